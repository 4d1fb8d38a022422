"""Review queue writes: routing decisions into queues, claiming with leases, releasing, skipping,
escalating and submitting verdicts — each one also written to the append-only audit log.

A claim is a lease: ``claimed_by`` plus ``lease_expires_at``. Claims are taken with
``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent reviewers never wait on, or get, the same row.
A lapsed lease makes the item claimable again; until someone else actually claims it, the
original reviewer still owns it and may submit.
"""

from __future__ import annotations

import random
from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, Model, OuterRef
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.models import Decision
from moderation.review.models import AuditEvent, ItemLabel, Review, ReviewQueue, ReviewSkip, ReviewTask
from moderation.review.selectors import review_queue_may_work

NO_LONGER_YOURS = "This item is no longer yours: your claim expired and it was given to someone else."
NOT_CLAIMED = "This item is not claimed by you; take it with “Claim next” from the queue."
ALREADY_REVIEWED = "Already reviewed: this item has a recorded verdict."
ESCALATED = "This item was escalated to a senior queue; it no longer takes a verdict here."

# Random draws (QA sampling, gold mixing) go through this so tests and benches can seed it.
rng = random.Random()  # noqa: S311 - sampling, not security


# --- audit log ---------------------------------------------------------------------------------


def audit_event_record(
    *, actor: User | None, action: str, obj: Model, payload: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one event to the audit log (the database refuses to change or delete it later)."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        object_type=obj._meta.model_name or obj.__class__.__name__.lower(),
        object_id=str(obj.pk),
        payload=payload or {},
    )


# --- queues and routing -----------------------------------------------------------------------


def review_queue_default() -> ReviewQueue:
    """The catch-all queue (made by a data migration; recreated here if a test flushed it)."""
    queue, _ = ReviewQueue.objects.get_or_create(slug=ReviewQueue.DEFAULT_SLUG, defaults={"name": "Default"})
    return queue


def review_queue_adjudication_default() -> ReviewQueue:
    queue, _ = ReviewQueue.objects.get_or_create(
        slug=ReviewQueue.ADJUDICATION_SLUG,
        defaults={"name": "Adjudication", "routes_new_decisions": False, "priority": 50},
    )
    return queue


def _item_priority(decision: Decision) -> int:
    # Likely violations first; unparseable model output needs a human most of all.
    if decision.parse_error:
        return 100
    return int(round(decision.confidence * 100)) if decision.is_violation else 0


def _queue_matches(queue: ReviewQueue, decision: Decision, *, escalated: bool, user_reported: bool) -> bool:
    if queue.policy_id is not None and decision.policy_version.policy_id != queue.policy_id:
        return False
    if queue.labels and decision.label not in queue.labels:
        return False
    if queue.confidence_min is not None and decision.confidence < queue.confidence_min:
        return False
    if queue.confidence_max is not None and decision.confidence > queue.confidence_max:
        return False
    if queue.escalated_only and not escalated:
        return False
    return not (queue.user_reported_only and not user_reported)


def _new_tasks(queue: ReviewQueue, decision: Decision, *, base_priority: int) -> list[ReviewTask]:
    deadline = decision.video.created_at + timedelta(seconds=queue.sla_seconds)
    return [
        ReviewTask(
            decision=decision, queue=queue, slot=slot, priority=queue.priority + base_priority, deadline=deadline
        )
        for slot in range(max(1, queue.required_reviews))
    ]


@transaction.atomic
def review_tasks_create_for_decision(
    *, decision: Decision, escalated: bool | None = None, user_reported: bool | None = None
) -> list[ReviewTask]:
    """Route a new decision into every routed queue whose filters it matches (N tasks per queue
    needing N reviews); the default queue takes it when no full (non-sampling) queue does.

    Idempotent: a decision that already has tasks gets none added, so a redelivered inference task
    is harmless. ``escalated`` defaults to the decision's ``cascade_escalated`` attribute, if the
    inference wing sets one; ``user_reported`` to whether the video's feedback aggregate counts
    any user report.
    """
    existing = list(ReviewTask.objects.filter(decision=decision, is_gold=False))
    if existing:
        return existing
    if escalated is None:
        escalated = bool(getattr(decision, "cascade_escalated", False))
    if user_reported is None:
        aggregate = getattr(decision.video, "feedback_aggregate", None)
        user_reported = bool(getattr(aggregate, "reports", 0))
    chosen: list[ReviewQueue] = []
    full_match = False
    candidates = ReviewQueue.objects.filter(is_active=True, routes_new_decisions=True).exclude(
        slug=ReviewQueue.DEFAULT_SLUG
    )
    for queue in candidates:
        if not _queue_matches(queue, decision, escalated=escalated, user_reported=user_reported):
            continue
        if queue.sample_rate < 1.0:
            if rng.random() < queue.sample_rate:
                chosen.append(queue)  # a QA sample, in addition to the item's normal queue
            continue
        chosen.append(queue)
        full_match = True
    if not full_match:
        chosen.append(review_queue_default())
    base = _item_priority(decision)
    tasks = ReviewTask.objects.bulk_create([t for q in chosen for t in _new_tasks(q, decision, base_priority=base)])
    audit_event_record(
        actor=None,
        action="decision.routed",
        obj=decision,
        payload={"label": decision.label, "confidence": decision.confidence, "queues": [q.slug for q in chosen]},
    )
    return tasks


# --- claiming ------------------------------------------------------------------------------------


def _lease_end() -> Any:
    return timezone.now() + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)


def _check_may_work(user: User, queue: ReviewQueue) -> None:
    if not review_queue_may_work(user=user, queue=queue):
        raise ModerationError(f"You may not work the queue “{queue.name}”.")


def _claim_gold(*, user: User, queue: ReviewQueue, now: Any) -> ReviewTask | None:
    """A gold item (known answer imported with the data) this reviewer has not seen in this queue."""
    seen = ReviewTask.objects.filter(queue=queue, decision_id=OuterRef("pk"), claimed_by=user)
    gold = Decision.objects.filter(
        Exists(ItemLabel.objects.filter(video_id=OuterRef("video_id"), source=ItemLabel.Source.IMPORT))
    ).filter(~Exists(seen))
    if queue.policy_id is not None:
        gold = gold.filter(policy_version__policy_id=queue.policy_id)
    decision = gold.order_by("pk").first()
    if decision is None:
        return None
    return ReviewTask.objects.create(
        decision=decision,
        queue=queue,
        is_gold=True,
        priority=queue.priority,
        status=ReviewTask.Status.CLAIMED,
        claimed_by=user,
        claimed_at=now,
        lease_expires_at=_lease_end(),
    )


def review_claim_next(
    *, user: User, queue: ReviewQueue | None = None, exclude_ids: Collection[int] = ()
) -> ReviewTask | None:
    """Give ``user`` one item to review from ``queue`` (default queue), or ``None`` when it has
    nothing claimable for them.

    - The user's own open claim comes first (its lease is renewed — also when it lapsed but no one
      else took it), so reloading or pressing "next" twice never hoards items.
    - At the queue's gold rate a gold item (known answer) is served instead, to score the reviewer.
    - Otherwise an item whose lease lapsed is taken back first, then the first pending item by
      priority then deadline. Rows another transaction is claiming right now are skipped, never
      waited on. In a queue needing N reviews, items the user already holds or reviewed are passed
      over, so their N reviews come from N different people.
    """
    queue = queue or review_queue_default()
    _check_may_work(user, queue)
    now = timezone.now()
    with transaction.atomic():
        own = (
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(queue=queue, status=ReviewTask.Status.CLAIMED, claimed_by=user)
            .exclude(pk__in=list(exclude_ids))
            .order_by("-lease_expires_at")
            .first()
        )
        if own is not None:
            own.lease_expires_at = _lease_end()
            own.save(update_fields=["lease_expires_at"])
            return own
        if queue.gold_rate > 0 and rng.random() < queue.gold_rate:
            gold = _claim_gold(user=user, queue=queue, now=now)
            if gold is not None:
                audit_event_record(actor=user, action="claim", obj=gold, payload={"queue": queue.slug})
                return gold
        candidates = (
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(queue=queue, is_gold=False)
            .exclude(pk__in=list(exclude_ids))
        )
        if queue.required_reviews > 1:
            mine = ReviewTask.objects.filter(queue=queue, decision_id=OuterRef("decision_id"), claimed_by=user)
            candidates = candidates.filter(~Exists(mine))
        order = ("-priority", "deadline", "pk")
        # Two index range scans rather than one OR: each walks (queue, status, priority, deadline)
        # in order and stops at the first free row, however long the queue.
        task = (
            candidates.filter(status=ReviewTask.Status.CLAIMED, lease_expires_at__lte=now).order_by(*order).first()
            or candidates.filter(status=ReviewTask.Status.PENDING).order_by(*order).first()
        )
        if task is None:
            return None
        previous = task.claimed_by_id
        task.status = ReviewTask.Status.CLAIMED
        task.claimed_by = user
        task.claimed_at = now
        task.lease_expires_at = _lease_end()
        task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])
        payload: dict[str, Any] = {"queue": queue.slug}
        if previous is not None:
            payload["lapsed_claim_of"] = previous
        audit_event_record(actor=user, action="claim", obj=task, payload=payload)
        return task


def _unclaim(task: ReviewTask) -> None:
    if task.is_gold:
        # Gold tasks are made per reviewer at claim time; one put back is simply dropped.
        task.delete()
        return
    task.status = ReviewTask.Status.PENDING
    task.claimed_by = None
    task.claimed_at = None
    task.lease_expires_at = None
    task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])


def _lock_owned(task: ReviewTask, user: User) -> ReviewTask:
    locked = ReviewTask.objects.select_for_update().select_related("queue").get(pk=task.pk)
    if locked.status == ReviewTask.Status.DONE:
        raise ModerationError(ALREADY_REVIEWED)
    if locked.status == ReviewTask.Status.ESCALATED:
        raise ModerationError(ESCALATED)
    if locked.status != ReviewTask.Status.CLAIMED or locked.claimed_by_id != user.pk:
        raise ModerationError(NOT_CLAIMED if locked.claimed_by_id is None else NO_LONGER_YOURS)
    return locked


@transaction.atomic
def review_release(*, task: ReviewTask, user: User) -> ReviewTask:
    """Put the user's claimed item back in the queue for anyone to take."""
    locked = _lock_owned(task, user)
    audit_event_record(actor=user, action="release", obj=locked, payload={"queue": locked.queue.slug})
    _unclaim(locked)
    return locked


@transaction.atomic
def review_release_all(*, user: User) -> int:
    """Release every open claim of ``user`` (on logout); returns how many were released."""
    held = list(
        ReviewTask.objects.select_for_update()
        .filter(status=ReviewTask.Status.CLAIMED, claimed_by=user)
        .select_related("queue")
    )
    for task in held:
        audit_event_record(actor=user, action="release", obj=task, payload={"queue": task.queue.slug, "logout": True})
        _unclaim(task)
    return len(held)


def review_release_on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver (connected in ``moderation.apps``): a reviewer who leaves frees their items."""
    if user is not None and user.is_authenticated:
        review_release_all(user=user)


@transaction.atomic
def review_skip(*, task: ReviewTask, user: User, reason: str) -> ReviewTask | None:
    """Pass on the user's claimed item, saying why; it returns to the queue and the user gets the
    next one. When nothing else is claimable the user keeps their item and ``None`` is returned.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ModerationError("Say why you skip this item.")
    locked = _lock_owned(task, user)
    nxt = review_claim_next(user=user, queue=locked.queue, exclude_ids=[locked.pk])
    if nxt is not None:
        ReviewSkip.objects.create(task=locked, user=user, reason=reason[:500])
        audit_event_record(
            actor=user, action="skip", obj=locked, payload={"queue": locked.queue.slug, "reason": reason[:500]}
        )
        _unclaim(locked)
    return nxt


@transaction.atomic
def review_escalate(*, task: ReviewTask, user: User, reason: str) -> ReviewTask:
    """Hand the user's claimed item to the queue's senior queue; returns the senior task."""
    reason = (reason or "").strip()
    if not reason:
        raise ModerationError("Say why you escalate this item.")
    locked = _lock_owned(task, user)
    senior = locked.queue.escalation_queue
    if senior is None:
        raise ModerationError(f"The queue “{locked.queue.name}” has no senior queue to escalate to.")
    decision = locked.decision
    senior_task, _ = ReviewTask.objects.get_or_create(
        decision=decision,
        queue=senior,
        slot=0,
        is_gold=False,
        defaults={"priority": senior.priority + _item_priority(decision), "deadline": locked.deadline},
    )
    locked.status = ReviewTask.Status.ESCALATED
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])
    audit_event_record(
        actor=user,
        action="escalate",
        obj=locked,
        payload={"queue": locked.queue.slug, "to_queue": senior.slug, "to_task": senior_task.pk, "reason": reason},
    )
    return senior_task


# --- verdicts ------------------------------------------------------------------------------------


def _final_label(decision: Decision, verdict: str, label: str) -> str:
    policy_version = decision.policy_version
    if verdict == Review.Verdict.APPROVE:
        return decision.label or policy_version.safe_label
    if verdict == Review.Verdict.OVERRIDE:
        names = policy_version.label_names()
        label = (label or "").strip()
        if not label:
            raise ModerationError("Choose the label that replaces the model's verdict.")
        if label not in names:
            raise ModerationError(f"“{label}” is not a label of policy {policy_version}.")
        if label == decision.label:
            raise ModerationError("That is the model's own label; use Approve to keep it.")
        return label
    raise ModerationError("Unknown verdict; choose Approve or Override.")


def _settle(task: ReviewTask, review: Review, user: User) -> None:
    """After a non-gold review: store the item's trusted label once its reviews agree, or send a
    disagreement to adjudication once all N reviews are in."""
    decision = task.decision
    siblings = list(
        ReviewTask.objects.filter(decision=decision, queue=task.queue, is_gold=False).select_related("review")
    )
    if any(s.status in (ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED) for s in siblings):
        return  # more independent reviews to come
    labels = {s.review.label for s in siblings if s.status == ReviewTask.Status.DONE and hasattr(s, "review")}
    if len(labels) == 1:
        # The human verdict becomes the item's trusted label (the latest settled review wins).
        ItemLabel.objects.update_or_create(
            video_id=decision.video_id,
            source=ItemLabel.Source.REVIEW,
            defaults={"label": review.label, "policy_version": decision.policy_version},
        )
        return
    if len(labels) > 1:
        target = task.queue.adjudication_queue or review_queue_adjudication_default()
        adjudication, created = ReviewTask.objects.get_or_create(
            decision=decision,
            queue=target,
            slot=0,
            is_gold=False,
            defaults={"priority": target.priority + _item_priority(decision), "deadline": task.deadline},
        )
        if created:
            audit_event_record(
                actor=user,
                action="disagreement",
                obj=adjudication,
                payload={"queue": task.queue.slug, "to_queue": target.slug, "labels": sorted(labels)},
            )


@transaction.atomic
def review_submit(*, task: ReviewTask, user: User, verdict: str, label: str = "", note: str = "") -> Review:
    """Record the reviewer's verdict on the model's decision and close the task.

    - ``approve`` stores the model's own label; ``override`` needs a different label of the
      decision's policy version.
    - Ownership is what counts, not the clock: a late submit after the lease lapsed is accepted as
      long as the reviewer still holds the claim (no one else claimed it meanwhile). Once someone
      else has claimed it the submit is refused, so two people never decide the same item.
    - A settled verdict (all of the queue's N reviews agree, or an adjudication) is stored as the
      video's ``ItemLabel`` from human review; N reviews that disagree open an adjudication task.
      A gold item only scores the reviewer against its known answer.
    - A second submit (double click, resent form) is refused with "Already reviewed"; the task row
      lock plus the one-to-one ``Review.task`` make it record exactly one verdict.
    """
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    if locked.status == ReviewTask.Status.DONE or Review.objects.filter(task=locked).exists():
        raise ModerationError(ALREADY_REVIEWED)
    locked = _lock_owned(locked, user)
    decision = Decision.objects.select_related("policy_version").get(pk=locked.decision_id)
    final_label = _final_label(decision, verdict, label)
    gold_correct = None
    if locked.is_gold:
        known = ItemLabel.objects.filter(video_id=decision.video_id, source=ItemLabel.Source.IMPORT).first()
        gold_correct = known is not None and known.label == final_label

    review = Review.objects.create(
        task=locked,
        decision=decision,
        reviewer=user,
        policy_version=decision.policy_version,
        verdict=verdict,
        label=final_label,
        note=(note or "").strip(),
        gold_correct=gold_correct,
    )
    locked.status = ReviewTask.Status.DONE
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])
    audit_event_record(
        actor=user,
        action=f"review.{verdict}",
        obj=locked,
        payload={
            "queue": locked.queue.slug,
            "review": review.pk,
            "decision": decision.pk,
            "model_label": decision.label,
            "label": final_label,
            "gold": locked.is_gold,
            **({"gold_correct": gold_correct} if locked.is_gold else {}),
        },
    )
    if not locked.is_gold:
        locked.decision = decision
        _settle(locked, review, user)
    return review
