"""Review queue writes: routing decisions into queues, claiming with leases, releasing, skipping,
escalating and submitting verdicts — each one also written to the append-only audit log.

A claim is a lease: ``claimed_by`` plus ``lease_expires_at``. Claims are taken with
``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent reviewers never wait on, or get, the same row.
A lapsed lease makes the item claimable again; until someone else actually claims it, the
original reviewer still owns it and may submit.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Model, OuterRef
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.models import Decision
from moderation.inference.selectors import videos_missing_decision_to_queue
from moderation.inference.services import (
    decision_answer_by_model,
    decision_by_model_found,
    decision_save_by_model,
    missing_decisions_queue,
)
from moderation.inference.stage1.label_value import label_value, uncertainty_term
from moderation.integrations.services import event_label_final, event_review_completed
from moderation.labels.models import ItemLabel
from moderation.media.models import Video
from moderation.media.selectors import (
    video_open_to_q,
    video_restricted,
)
from moderation.review.counts import review_queue_counts_forget
from moderation.review.models import AuditEvent, AwaitedQueueItem, Review, ReviewQueue, ReviewSkip, ReviewTask
from moderation.review.selectors import (
    NOT_MINE_SQL,
    NOT_OWN_UPLOAD_SQL,
    NOT_WORKED_BEFORE_SQL,
    RESTRICTED_QUEUE_SHOWN,
    SKIP_REASONS,
    review_open_video_clause,
    review_queue_may_work,
    review_tasks_held_hidden,
    review_worked_before,
    review_worked_before_text,
    videos_routing_orphaned,
    videos_routing_stranded,
)
from workbench import storage
from workbench.db import prepared_cursor
from workbench.queues import enqueue
from workbench.roles import Perm
from workbench.text import shown_text

logger = logging.getLogger(__name__)

NO_LONGER_YOURS = (
    "This item is claimed by another reviewer; if it was yours, your claim expired and it was given to them."
)
NOT_CLAIMED = "This item is not claimed by you; take it with “Claim next” from the queue."
ALREADY_REVIEWED = "Already reviewed: this item has a recorded verdict."
OWN_UPLOAD = "You uploaded this video: a reviewer never decides their own content. Release it for another reviewer."
ESCALATED = "This item was escalated to a senior queue; it no longer takes a verdict here."
# An item that no longer exists: its page says the first part, an action on it the whole.
ITEM_GONE = "This item is no longer in the queue (given back, or its video removed)"
GONE = f"{ITEM_GONE}; nothing was recorded."

# Random draws (QA sampling, gold mixing) go through this so tests and benches can seed it.
rng = random.Random()  # noqa: S311 - sampling, not security


# --- audit log ---------------------------------------------------------------------------------


def audit_event_record(
    *, actor: User | None, action: str, obj: Model | None, payload: dict[str, Any] | None = None
) -> AuditEvent:
    """Append one event to the audit log (the database refuses to change or delete it later). ``obj`` None:
    an action on no one row (a download of data chosen by filters); its payload says what was chosen."""
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor is not None else "",
        action=action,
        object_type="" if obj is None else obj._meta.model_name or obj.__class__.__name__.lower(),
        object_id="" if obj is None else str(obj.pk),
        payload=payload or {},
    )


# --- queues and routing -----------------------------------------------------------------------


def review_queue_default() -> ReviewQueue:
    """The catch-all queue (made by a data migration; recreated here if a test flushed it)."""
    queue, _ = ReviewQueue.objects.get_or_create(slug=ReviewQueue.DEFAULT_SLUG, defaults={"name": "Default"})
    return queue


@transaction.atomic
def review_queue_senior_default() -> ReviewQueue | None:
    """Give the default queue a senior queue to escalate to, once: "Senior review" (``ReviewQueue.SENIOR_SLUG``), which
    takes no new decisions, only the items escalated to it, and is open to every reviewer but the one who escalated
    each item (four eyes: the claim never hands it back to them, ``NOT_WORKED_BEFORE_SQL``). ``bootstrap`` (so every
    ``./run.sh``) calls it: after a fresh start the default queue had no escalation queue, so no item could be
    escalated anywhere until an admin made one.

    Made once: a default queue that already escalates somewhere keeps its queue, and once a senior queue exists the
    admin's link or unlink is left as it is. Returns the default queue's escalation queue (None if an admin unlinked
    it)."""
    default = ReviewQueue.objects.select_for_update().filter(slug=ReviewQueue.DEFAULT_SLUG).first()
    if default is None:
        default = review_queue_default()
    if default.escalation_queue_id is not None or ReviewQueue.objects.filter(slug=ReviewQueue.SENIOR_SLUG).exists():
        return default.escalation_queue
    senior = ReviewQueue.objects.create(
        slug=ReviewQueue.SENIOR_SLUG,
        name="Senior review",
        description="Items a reviewer escalated from the default queue. The reviewer who escalated an item never "
        "gets it here: another decides it.",
        routes_new_decisions=False,
        priority=40,
    )
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    audit_event_record(
        actor=None,
        action="queue.escalation_default",
        obj=default,
        payload={"queue": default.slug, "to_queue": senior.slug},
    )
    return senior


def review_queue_adjudication_default() -> ReviewQueue:
    queue, _ = ReviewQueue.objects.get_or_create(
        slug=ReviewQueue.ADJUDICATION_SLUG,
        defaults={"name": "Adjudication", "routes_new_decisions": False, "priority": 50},
    )
    return queue


def review_queue_adjudication_for(*, queue: ReviewQueue) -> ReviewQueue:
    """Where ``queue``'s disagreements go: the adjudication queue it names, else the default one, else, for a queue
    restricted to groups, an adjudication queue of its own restricted to the same groups (made on its first
    disagreement, ``adjudication-<id>``, its groups kept the same as ``queue``'s at each one).

    The default adjudication queue is open to every reviewer, and an item there opens its video to them
    (``video_open_to_q``: an item of the same policy in a queue open to all): two members of a restricted queue who
    disagreed handed its video, both verdicts and their notes to every moderator, with no admin having chosen it. An
    adjudication queue an admin names (open or not) is their choice, as an open senior queue is."""
    if queue.adjudication_queue_id is not None:
        return queue.adjudication_queue  # type: ignore[return-value]
    groups = list(queue.allowed_groups.all())
    if not groups:
        return review_queue_adjudication_default()
    own, created = ReviewQueue.objects.get_or_create(
        slug=f"{ReviewQueue.ADJUDICATION_SLUG}-{queue.pk}",
        defaults={
            "name": f"Adjudication · {queue.name}"[: ReviewQueue._meta.get_field("name").max_length or 200],
            "kind": queue.kind,
            "routes_new_decisions": False,
            "priority": 50,
        },
    )
    if created or set(own.allowed_groups.all()) != set(groups):
        own.allowed_groups.set(groups)
    return own


def _item_priority(decision: Decision, queue: ReviewQueue | None = None) -> int:
    # Likely violations first; unparseable model output needs a human most of all.
    if decision.parse_error:
        return 100
    if queue is not None and queue.order_by_label_value:
        return int(round(100 * review_label_value(decision=decision, sla_seconds=queue.sla_seconds)))
    return int(round(decision.confidence * 100)) if decision.is_violation else 0


def review_label_value(*, decision: Decision, sla_seconds: int, now: datetime | None = None) -> float:
    """0..1: what a human label of this item is expected to be worth, by the one rule in
    ``stage1.label_value`` (which the learning-curve bench also orders by). Uncertainty is stage 1's
    term (``uncertainty_term``: normalised entropy of its calibrated P(violative)) when the cascade
    scored the item, else 1 − |2·confidence − 1|; user feedback disagrees when users reported an item
    the model let through or appealed one it flagged; SLA urgency is the share of the SLA already spent
    at routing (a backlog item is more urgent). Within equal values the queue serves the earliest
    deadline first."""
    if decision.cascade_p_violative is not None:
        uncertainty = float(uncertainty_term(np.array([decision.cascade_p_violative]))[0])
    elif decision.cascade_uncertainty is not None:
        uncertainty = decision.cascade_uncertainty
    else:
        uncertainty = 1.0 - abs(2.0 * decision.confidence - 1.0)
    aggregate = getattr(decision.video, "feedback_aggregate", None)
    reports, appeals = getattr(aggregate, "reports", 0), getattr(aggregate, "appeals", 0)
    disagreement = (reports > 0 and not decision.is_violation) or (appeals > 0 and decision.is_violation)
    now = now or timezone.now()
    spent = (now - decision.video.created_at).total_seconds() / sla_seconds if sla_seconds else 1.0
    return label_value(uncertainty=uncertainty, feedback_disagreement=disagreement, sla_spent=spent)


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


def _new_tasks(queue: ReviewQueue, decision: Decision) -> list[ReviewTask]:
    deadline = decision.video.created_at + timedelta(seconds=queue.sla_seconds)
    priority = queue.priority + _item_priority(decision, queue)
    return [
        ReviewTask(decision=decision, queue=queue, slot=slot, priority=priority, deadline=deadline)
        for slot in range(max(1, queue.required_reviews))
    ]


def _routing_facts(decision: Decision) -> tuple[bool, bool]:
    """Whether the cascade escalated ``decision``, and whether users reported its video (queue filters)."""
    aggregate = getattr(decision.video, "feedback_aggregate", None)
    return bool(getattr(decision, "cascade_escalated", False)), bool(getattr(aggregate, "reports", 0))


def _routed_queues() -> list[ReviewQueue]:
    """The queues routing may choose besides the default one (which takes what none of them takes fully)."""
    return list(
        ReviewQueue.objects.filter(is_active=True, routes_new_decisions=True).exclude(slug=ReviewQueue.DEFAULT_SLUG)
    )


def _decides_itself(queue: ReviewQueue, decision: Decision) -> bool:
    """Whether ``queue`` reviews ``decision``'s own verdict (else its own model decides the item first)."""
    return queue.model_version_id in (None, decision.model_version_id)


@transaction.atomic
def review_tasks_create_for_decision(
    *, decision: Decision, escalated: bool | None = None, user_reported: bool | None = None
) -> list[ReviewTask]:
    """Route a new decision into every routed queue whose filters it matches (N tasks per queue
    needing N reviews); the default queue takes it when no full (non-sampling) queue does.

    Idempotent: a decision that already has tasks gets none added, so a redelivered inference task
    is harmless. ``escalated`` defaults to the decision's ``cascade_escalated`` attribute, if the
    inference wing sets one; ``user_reported`` to whether the video's feedback aggregate counts
    any user report. A queue that names another model is owed its item (``AwaitedQueueItem``) until that model
    has decided.
    """
    existing = list(ReviewTask.objects.filter(decision=decision, is_gold=False))
    # Routed already: an item of its own, one awaited, or one a queue's own model decided since (a later decision
    # of the same video and policy version), e.g. a redelivered inference task handing it over again.
    made_since = ReviewTask.objects.filter(
        decision__video_id=decision.video_id,
        decision__policy_version_id=decision.policy_version_id,
        decision_id__gt=decision.pk,
        queue__kind=ReviewQueue.Kind.MODERATION,
        is_gold=False,
    )
    if existing or AwaitedQueueItem.objects.filter(decision=decision).exists() or made_since.exists():
        return existing
    facts = _routing_facts(decision)
    escalated = facts[0] if escalated is None else escalated
    user_reported = facts[1] if user_reported is None else user_reported
    chosen: list[ReviewQueue] = []
    full_match = False
    for queue in _routed_queues():
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
    # A queue that reviews another model's verdict gets the item once that model has decided it
    # (review_queue_decision: moderation.review.tasks.run_queue_decision, on the infer queue).
    own = [q for q in chosen if _decides_itself(q, decision)]
    other = [q for q in chosen if q not in own]
    AwaitedQueueItem.objects.bulk_create([AwaitedQueueItem(decision=decision, queue=q) for q in other])
    tasks = ReviewTask.objects.bulk_create([t for q in own for t in _new_tasks(q, decision)])
    # Restricted from now on, not from when a queue's own model has decided and its item exists: until then
    # the video has no item and would be open to everyone (its page, its media).
    review_routing_flag_sync(video_id=decision.video_id)
    restricted = ReviewQueue.objects.filter(pk__in=[q.pk for q in chosen], allowed_groups__isnull=False).exists()
    dropped = _open_tag_items_drop(video_id=decision.video_id) if restricted else []
    review_queue_counts_forget(queue_ids=[q.pk for q in own] + dropped)
    audit_event_record(
        actor=None,
        action="decision.routed",
        obj=decision,
        payload={
            "label": decision.label,
            "confidence": decision.confidence,
            "queues": [q.slug for q in own],
            "queues_for_other_models": [q.slug for q in other],
        },
    )
    for queue in other:
        enqueue("moderation.review.tasks.run_queue_decision", decision.pk, queue.pk)
    return tasks


def review_routing_flag_sync(*, video_id: int) -> bool:
    """Set ``Video.routed_restricted`` to whether an item of the video is awaited by a queue restricted to groups
    (the visibility rule closes such a video to all but admins until the item is made) and return it. Called in
    the transaction of every write that adds, drops or fulfils an awaited item or changes a queue's groups, so
    the flag never outlives the item it waits for."""
    awaited = AwaitedQueueItem.objects.filter(decision__video_id=video_id, queue__allowed_groups__isnull=False)
    restricted = awaited.exists()
    Video.objects.filter(pk=video_id).exclude(routed_restricted=restricted).update(routed_restricted=restricted)
    return restricted


def _items_made_in(decision: Decision) -> set[int]:
    """The moderation queues holding an item of ``decision``'s video under its policy version (the queue's
    own model's decision counts: it is the item routing owed that queue)."""
    return set(
        ReviewTask.objects.filter(
            decision__video_id=decision.video_id,
            decision__policy_version_id=decision.policy_version_id,
            queue__kind=ReviewQueue.Kind.MODERATION,
            is_gold=False,
        ).values_list("queue_id", flat=True)
    )


@transaction.atomic
def review_decision_reroute(*, decision: Decision, reason: str) -> bool:
    """Route ``decision`` again as the queues are configured now, after an edit left a queue unable to take the
    item routing owed it (``AwaitedQueueItem``): its model removed or made the decision's own, the queue deleted,
    made inactive or given other filters or groups. Made items stay (reviews and claims are people's work); an
    awaited item whose queue no longer takes the decision is dropped; every queue that takes it now gets its item
    (its own model decides first when it names another one; a QA sample already drawn is kept, none is drawn
    again); with no queue left for it, the default queue takes it. The video's restricted flag then says what is
    awaited now: open unless a queue restricted to groups holds or awaits it. Idempotent. Returns whether
    anything changed; then a ``decision.rerouted`` audit event says where it goes now and why (``reason``)."""
    video = Video.objects.select_for_update().only("routed_restricted").get(pk=decision.video_id)  # one writer
    escalated, user_reported = _routing_facts(decision)
    awaited = {a.queue_id: a for a in AwaitedQueueItem.objects.filter(decision=decision)}
    takes = [
        q
        for q in _routed_queues()
        if _queue_matches(q, decision, escalated=escalated, user_reported=user_reported)
        and (q.sample_rate >= 1.0 or q.pk in awaited)
    ]
    made = _items_made_in(decision)
    owed = AwaitedQueueItem.objects.filter(decision=decision)
    changed = owed.exclude(queue__in=[q.pk for q in takes]).delete()[0] > 0
    if not any(q.sample_rate >= 1.0 for q in takes) and not made - {q.pk for q in takes}:
        takes.append(review_queue_default())
    new_tasks: list[ReviewTask] = []
    for queue in takes:
        if queue.pk in made:
            changed |= owed.filter(queue=queue).delete()[0] > 0
        elif _decides_itself(queue, decision):
            owed.filter(queue=queue).delete()
            new_tasks += review_tasks_create_in_queue(decision=decision, queue=queue)
            changed = True
        elif AwaitedQueueItem.objects.get_or_create(decision=decision, queue=queue)[1]:
            enqueue("moderation.review.tasks.run_queue_decision", decision.pk, queue.pk)
            changed = True
    changed |= review_routing_flag_sync(video_id=decision.video_id) != video.routed_restricted
    if not changed:
        return False
    dropped = _open_tag_items_drop(video_id=decision.video_id)
    review_queue_counts_forget(queue_ids=[t.queue_id for t in new_tasks] + dropped)
    audit_event_record(
        actor=None,
        action="decision.rerouted",
        obj=decision,
        payload={"queues": [q.slug for q in takes], "reason": reason},
    )
    return True


def review_queues_edited(*, queue_ids: Sequence[int], reason: str) -> int:
    """After queues ``queue_ids`` were edited (in the caller's transaction): every decision whose item one of them
    awaits is routed again as the queues say now (``review_decision_reroute``), which also sets the video's
    restricted flag again (a queue's groups may have changed). Returns how many decisions' routing changed."""
    decisions = Decision.objects.filter(
        pk__in=AwaitedQueueItem.objects.filter(queue_id__in=queue_ids).values("decision_id")
    ).select_related("video__feedback_aggregate", "policy_version")
    return sum(review_decision_reroute(decision=decision, reason=reason) for decision in decisions)


@transaction.atomic
def review_queues_delete(*, queue_ids: Sequence[int]) -> int:
    """Delete queues (the admin's delete): the items they awaited are routed elsewhere as the queues left say, in
    the same transaction, so no video stays closed waiting for a queue that is gone. A queue holding items
    cannot be deleted (``ReviewTask.queue`` protects them). Returns how many decisions were routed again."""
    # The queues' rows first: a queue-model task saving an item into one of them waits, then finds it gone
    # (``review_queue_decision`` takes the queue's row before the video's, as this does).
    slugs = list(
        ReviewQueue.objects.select_for_update().filter(pk__in=queue_ids).order_by("pk").values_list("slug", flat=True)
    )
    decision_ids = list(
        AwaitedQueueItem.objects.filter(queue_id__in=queue_ids).values_list("decision_id", flat=True).distinct()
    )
    ReviewQueue.objects.filter(pk__in=queue_ids).delete()
    decisions = Decision.objects.filter(pk__in=decision_ids).select_related("video__feedback_aggregate")
    for decision in decisions:
        review_decision_reroute(decision=decision, reason=f"queue deleted: {', '.join(slugs)}")
    return len(decision_ids)


def _open_tag_items_drop(*, video_id: int) -> list[int]:
    """Drop the unworked items of a video in tags queues open to all once routing has made it restricted
    (``video_restricted``): a tags item opens no video (``video_open_to_q``), so moderators outside the
    restricted queue's groups would claim an item they may not open. Its queue's groups tag it from its review
    screen. Worked items (done, escalated) stay: they hold who tagged it. Returns the queues that lost items."""
    if not video_restricted(video_id=video_id):
        return []
    items = ReviewTask.objects.filter(
        decision__video_id=video_id,
        queue__kind=ReviewQueue.Kind.TAGS,
        queue__allowed_groups__isnull=True,
        status__in=[ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED],
        is_gold=False,
    )
    queue_ids = sorted(set(items.values_list("queue_id", flat=True)))
    ReviewTask.objects.filter(pk__in=list(items.values_list("pk", flat=True))).delete()
    return queue_ids


def review_route_decision(sender: Any, *, decision: Decision, **kwargs: Any) -> None:
    """``decision_to_review`` receiver (connected in ``moderation.apps``): inference hands a decision over."""
    review_tasks_create_for_decision(decision=decision)


def _queue_still_takes(queue: ReviewQueue, decision: Decision) -> bool:
    """Whether ``queue``, as configured now, takes ``decision``'s item from its own model (not the decision's)."""
    escalated, user_reported = _routing_facts(decision)
    return (
        queue.is_active
        and queue.routes_new_decisions
        and _queue_matches(queue, decision, escalated=escalated, user_reported=user_reported)
        and not _decides_itself(queue, decision)
    )


def review_queue_decision(*, decision_id: int, queue_id: int) -> Decision | None:
    """The decision a queue reviews when the queue names its own model: that model decides the item
    under the same policy version (``decision_answer_by_model``, outside any transaction), and its decision is
    saved and goes into that queue only, in the transaction that drops the awaited item (``AwaitedQueueItem``)
    and sets the video's restricted flag.

    Idempotent: an item already made returns its decision, without running the model again. When that model
    fails, the queue gets the item under its first decision rather than never. A queue edited since routing
    so that it would not take the item now (inactive, other filters, no model of its own or the decision's own)
    has the decision routed again as the queues say now (``review_decision_reroute``), and None is returned;
    so is None when nothing is awaited any more (the queue deleted, or an edit routed the decision elsewhere).

    An edit while the model runs: the answer is saved only if, under the queue's row lock and then the video's
    (the order an admin's save or delete of the queue takes them in), the item is still awaited from that very
    model. Else nothing of it is saved, so no decision is left that no queue reviews: an edit that routed the
    decision elsewhere stands; a queue that takes the item from another model now has that model asked; one
    that no longer takes it has the decision routed again as the queues say now.
    """
    awaited = (
        AwaitedQueueItem.objects.select_related("decision__video", "decision__policy_version", "queue__model_version")
        .filter(decision_id=decision_id, queue_id=queue_id)
        .first()
    )
    if awaited is None:
        first = Decision.objects.filter(pk=decision_id).only("video_id", "policy_version_id").first()
        if first is None:
            return None
        made = ReviewTask.objects.filter(
            queue_id=queue_id,
            decision__video_id=first.video_id,
            decision__policy_version_id=first.policy_version_id,
            is_gold=False,
        )
        item = made.select_related("decision").first()
        return item.decision if item is not None else None
    base, queue = awaited.decision, awaited.queue
    model_version = queue.model_version
    if model_version is None or not _queue_still_takes(queue, base):
        review_decision_reroute(decision=base, reason=f"queue {queue.slug} edited after routing")
        return None
    found = decision_by_model_found(decision=base, model_version=model_version)
    answer = None if found is not None else decision_answer_by_model(decision=base, model_version=model_version)
    with transaction.atomic():
        # Lock order: the queue's row, then the video's, as the admin's save (an UPDATE) and delete of the queue
        # take them; so the edit and this write never wait on each other in a cycle, and the later one sees the
        # earlier one's outcome.
        now = (
            ReviewQueue.objects.select_for_update(no_key=True, of=("self",))
            .select_related("model_version")
            .filter(pk=queue_id)
            .first()
        )
        Video.objects.select_for_update().filter(pk=base.video_id).first()
        if now is None or not AwaitedQueueItem.objects.filter(pk=awaited.pk).exists():
            return None  # the queue deleted, or an edit routed the decision elsewhere while the model ran
        if not _queue_still_takes(now, base):
            review_decision_reroute(decision=base, reason=f"queue {now.slug} edited while its model ran")
            return None
        if now.model_version_id != model_version.pk:
            # The queue names another model now: that one's answer is the item it awaits.
            enqueue("moderation.review.tasks.run_queue_decision", base.pk, now.pk)
            return None
        if found is not None:
            decision = found
        elif answer is not None:
            decision = decision_save_by_model(decision=base, answer=answer)
        else:
            decision = base  # the model failed: the queue reviews the first decision rather than nothing
        AwaitedQueueItem.objects.filter(pk=awaited.pk).delete()
        review_tasks_create_in_queue(decision=decision, queue=now)
        review_routing_flag_sync(video_id=base.video_id)
    logger.info("queue %s reviews decision %s (queue model %s)", queue.slug, decision.pk, model_version.name)
    return decision


@transaction.atomic
def review_tasks_create_in_queue(*, decision: Decision, queue: ReviewQueue) -> list[ReviewTask]:
    """Put ``decision`` into one queue, e.g. the decision of the model that queue reviews.
    Idempotent: a decision already in the queue gets no more tasks."""
    existing = list(ReviewTask.objects.filter(decision=decision, queue=queue, is_gold=False))
    if existing:
        return existing
    tasks = ReviewTask.objects.bulk_create(_new_tasks(queue, decision))
    review_queue_counts_forget(queue_ids=[queue.pk])
    audit_event_record(
        actor=None,
        action="decision.routed",
        obj=decision,
        payload={"label": decision.label, "confidence": decision.confidence, "queues": [queue.slug]},
    )
    return tasks


# --- routing repair ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingRepair:
    rerouted: list[int]  # videos routed again as the queues say now
    decisions_queued: list[int]  # decided videos whose missing auto-applied policies' decisions were queued
    stranded_left: int = 0  # stranded videos a next run would still route again (beyond the limit)
    missing_left: int = 0  # half-decided videos a next run would still queue (not queued, not given up)
    mended: list[int] = field(default_factory=list)  # videos whose routing older code left inconsistent, mended
    orphaned_left: int = 0  # such videos a next run would still mend


def review_routing_mend(*, video_id: int) -> bool:
    """Mend one video's routing that older code left inconsistent (``routing_orphans``), in the caller's
    transaction: its pending items in queues taking another policy's decisions are dropped (nobody started
    them); a (video, policy version) that no moderation queue holds nor awaits then, or that lost such an item,
    is routed again from its first decision as the queues say now (``review_decision_reroute``: the default
    queue when no other takes it); an awaited row whose queue holds the item already is deleted, one whose queue
    takes another policy now is routed again; the restricted flag then says what is awaited. Idempotent: a consistent video is left as it is. Returns whether anything
    changed; each change is in the audit log."""
    video = Video.objects.select_for_update().only("routed_restricted").filter(pk=video_id).first()
    if video is None:
        return False  # deleted since it was counted
    changed = False
    misplaced = list(
        ReviewTask.objects.filter(
            decision__video_id=video_id,
            status=ReviewTask.Status.PENDING,
            is_gold=False,
            queue__kind=ReviewQueue.Kind.MODERATION,
            queue__policy__isnull=False,
        )
        .exclude(queue__policy_id=F("decision__policy_version__policy_id"))
        .select_related("queue", "decision")
    )
    lost_items: set[int] = set()  # policy versions that lost an item
    for task in misplaced:
        lost_items.add(task.decision.policy_version_id)
        audit_event_record(
            actor=None,
            action="review_task.dropped",
            obj=task.decision,
            payload={"queue": task.queue.slug, "slot": task.slot, "reason": "its queue takes another policy"},
        )
    if misplaced:
        ReviewTask.objects.filter(pk__in=[t.pk for t in misplaced]).delete()
        review_queue_counts_forget(queue_ids=sorted({t.queue_id for t in misplaced}))
        changed = True
    awaited = list(
        AwaitedQueueItem.objects.filter(decision__video_id=video_id).select_related(
            "decision__policy_version", "decision__video__feedback_aggregate", "queue"
        )
    )
    stale = [a for a in awaited if a.queue_id in _items_made_in(a.decision)]
    if stale:
        AwaitedQueueItem.objects.filter(pk__in=[a.pk for a in stale]).delete()
        changed = True
    for item in awaited:
        queue, decision = item.queue, item.decision
        if item not in stale and queue.policy_id not in (None, decision.policy_version.policy_id):
            # Its queue takes another policy now: routed again as the queues say (the row is dropped there).
            changed |= review_decision_reroute(
                decision=decision, reason="routing repair: its queue takes another policy"
            )
    firsts = (
        Decision.objects.filter(video_id=video_id)
        .order_by("policy_version_id", "created_at", "pk")
        .distinct("policy_version_id")
        .select_related("video__feedback_aggregate", "policy_version")
    )
    for first in firsts:
        routed = (
            _items_made_in(first)
            or AwaitedQueueItem.objects.filter(
                decision__video_id=video_id, decision__policy_version_id=first.policy_version_id
            ).exists()
        )
        if not routed or first.policy_version_id in lost_items:
            reason = "older code left it in no queue" if not routed else "its queue takes another policy"
            changed |= review_decision_reroute(decision=first, reason=f"routing repair: {reason}")
    changed |= review_routing_flag_sync(video_id=video_id) != video.routed_restricted
    return changed


def _video_reroute(*, video_id: int, reason: str) -> None:
    """Route a stranded video again: the decisions whose items are awaited, else (a flag with nothing awaited:
    older code, or a queue's groups changed without routing again) each policy version's first decision, the one
    routing chose queues for (a queue's own model decides later)."""
    awaited = AwaitedQueueItem.objects.filter(decision__video_id=video_id).values("decision_id")
    decisions = list(Decision.objects.filter(pk__in=awaited).select_related("video__feedback_aggregate"))
    if not decisions:
        firsts = Decision.objects.filter(video_id=video_id).order_by("policy_version_id", "created_at", "pk")
        decisions = list(firsts.distinct("policy_version_id").select_related("video__feedback_aggregate"))
    for decision in decisions:
        review_decision_reroute(decision=decision, reason=reason)
    review_routing_flag_sync(video_id=video_id)


def review_routing_repair(*, limit: int | None = None, dry_run: bool = False) -> RoutingRepair:
    """The ops page's and ``manage.py repair_routing``'s repair: route every stranded video again as the queues
    say now (``videos_routing_stranded``: closed waiting for an item no queue will make, or open while a
    restricted queue awaits it), each in its own transaction, and queue the decisions decided videos lack under
    an auto-applied policy (``videos_missing_decision_to_queue``: not those queued already nor those given up
    after failing; ``decide_missing_policies`` on the infer queue, idempotent), and mend the routing older code
    left inconsistent (``videos_routing_orphaned``, ``review_routing_mend``). At most ``limit`` videos of each
    kind a run (default ``ROUTING_REPAIR_BATCH``); what is left for a next run is counted (``stranded_left``,
    ``missing_left``, ``orphaned_left``); ``dry_run`` only says which."""
    limit = settings.ROUTING_REPAIR_BATCH if limit is None else limit
    now = timezone.now()
    stranded = list(videos_routing_stranded().values_list("pk", flat=True)[:limit])
    missing = list(videos_missing_decision_to_queue(now=now).values_list("pk", flat=True)[:limit])
    orphaned = list(videos_routing_orphaned().values_list("pk", flat=True)[:limit])
    if dry_run:
        return RoutingRepair(
            rerouted=stranded,
            decisions_queued=missing,
            mended=orphaned,
            stranded_left=max(0, videos_routing_stranded().count() - limit),
            missing_left=max(0, videos_missing_decision_to_queue(now=now).count() - limit),
            orphaned_left=max(0, videos_routing_orphaned().count() - limit),
        )
    for video_id in stranded:
        with transaction.atomic():
            _video_reroute(video_id=video_id, reason="routing repair")
    mended = []
    for video_id in orphaned:
        with transaction.atomic():
            if review_routing_mend(video_id=video_id):
                mended.append(video_id)
    missing_decisions_queue(video_ids=missing, now=now)
    left = RoutingRepair(
        rerouted=stranded,
        decisions_queued=missing,
        mended=mended,
        stranded_left=videos_routing_stranded().count(),  # one the repair could not route stays counted
        missing_left=videos_missing_decision_to_queue(now=now).exclude(pk__in=missing).count(),
        orphaned_left=videos_routing_orphaned().count(),
    )
    logger.info(
        "routing repair: %s videos routed again, %s mended, %s missing decisions queued; %s, %s and %s left",
        len(stranded),
        len(mended),
        len(missing),
        left.stranded_left,
        left.orphaned_left,
        left.missing_left,
    )
    return left


# --- claiming ------------------------------------------------------------------------------------


def _lease_end() -> Any:
    return timezone.now() + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)


def _claim_gold(*, user: User, queue: ReviewQueue, now: Any) -> ReviewTask | None:
    """A gold item (known answer imported with the data) this reviewer has not seen in this queue; none while they
    hold one there already (an item claimed ahead is not a second gold item)."""
    if ReviewTask.objects.filter(queue=queue, claimed_by=user, is_gold=True, status=ReviewTask.Status.CLAIMED).exists():
        return None
    seen = ReviewTask.objects.filter(queue=queue, decision_id=OuterRef("pk"), claimed_by=user)
    gold = Decision.objects.filter(
        Exists(ItemLabel.objects.filter(video_id=OuterRef("video_id"), source=ItemLabel.Source.IMPORT))
    ).filter(~Exists(seen), video_open_to_q(user=user, field="video_id"))
    gold = gold.exclude(video__created_by=user)  # never one's own upload (``NOT_OWN_UPLOAD_SQL``)
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


# The whole claim in one statement (one round trip, its own transaction in autocommit): the
# reviewer's own open claim, else an item whose lease lapsed, else the first pending item — each
# leg ``FOR UPDATE SKIP LOCKED`` and walked in the claim index's order. The legs are pulled lazily
# through ``LIMIT 1`` (Postgres evaluates a WITH query only as far as its reader fetches), so a
# later leg never runs, nor locks anything, once an earlier one found a row. The same statement
# renews or takes the lease, writes the audit row and reports whether the reviewer may work the
# queue at all (then nothing is locked or written). ``{open_video}`` passes over items whose video the
# reviewer may not open (``review_open_video_clause``: the selector's rule compiled into the statement), and
# ``{not_own_upload}`` items whose video the reviewer uploaded (``NOT_OWN_UPLOAD_SQL``), and ``{not_worked}`` items
# the reviewer already escalated or decided in another queue (``NOT_WORKED_BEFORE_SQL``), in every leg; ``{not_mine}``
# the other slots of an item the reviewer holds or decided in a queue needing N reviews (``NOT_MINE_SQL``), in every
# leg but their own claim's.
#
# Work per contended claim (bench/claim_work.py, bench/RESULTS.md "Where a contended claim's work goes"):
# - Its own transaction (``_claim_commits_alone``) commits asynchronously (``synchronous_commit`` off for that
#   transaction only, set in the statement: still one round trip). A claim is a lease: were the database server
#   itself to crash within a fraction of a second after a claim (``wal_writer_delay``), that claim and its audit row
#   would be gone together, the item pending again, and the reviewer's submit refused ("not claimed by you") instead
#   of recorded twice. Any later durable commit (a submit, a verdict) flushes the claims written before it. Verdicts,
#   releases and every other write keep their durable commits. The claim's commit had waited on a WAL flush (~1 fsync
#   each, 2-8 ms on this machine's disk under load).
_CLAIM_SQL = """
WITH allowed AS (
    SELECT %(superuser)s
        OR NOT EXISTS (SELECT 1 FROM moderation_reviewqueue_allowed_groups g WHERE g.reviewqueue_id = %(queue)s)
        OR EXISTS (
            SELECT 1 FROM moderation_reviewqueue_allowed_groups g
            JOIN auth_user_groups ug ON ug.group_id = g.group_id
            WHERE g.reviewqueue_id = %(queue)s AND ug.user_id = %(user)s
        ) AS ok
),
own AS (
    SELECT t.id, t.claimed_by_id FROM moderation_reviewtask t
    WHERE (SELECT ok FROM allowed) AND t.queue_id = %(queue)s AND t.status = 'claimed'
      AND t.claimed_by_id = %(user)s AND NOT (t.id = ANY(%(exclude)s)) {open_video} {not_own_upload} {not_worked}
    ORDER BY t.claimed_at, t.id LIMIT 1 FOR UPDATE SKIP LOCKED
),
lapsed AS (
    SELECT t.id, t.claimed_by_id FROM moderation_reviewtask t
    WHERE %(take_new)s AND (SELECT ok FROM allowed) AND t.queue_id = %(queue)s AND t.status = 'claimed'
      AND t.lease_expires_at <= %(now)s AND NOT t.is_gold AND NOT (t.id = ANY(%(exclude)s)) {not_mine} {open_video} {not_own_upload} {not_worked}
    ORDER BY t.priority DESC, t.deadline, t.id LIMIT 1 FOR UPDATE SKIP LOCKED
),
pending AS (
    SELECT t.id, t.claimed_by_id FROM moderation_reviewtask t
    WHERE %(take_new)s AND (SELECT ok FROM allowed) AND t.queue_id = %(queue)s AND t.status = 'pending'
      AND NOT t.is_gold AND NOT (t.id = ANY(%(exclude)s)) {not_mine} {open_video} {not_own_upload} {not_worked}
      AND NOT EXISTS (SELECT 1 FROM moderation_reviewskip s WHERE s.task_id = t.id AND s.user_id = %(user)s)
    ORDER BY t.priority DESC, t.deadline, t.id LIMIT 1 FOR UPDATE SKIP LOCKED
),
skipped AS (
    SELECT t.id, t.claimed_by_id FROM moderation_reviewtask t
    WHERE %(take_new)s AND (SELECT ok FROM allowed) AND t.queue_id = %(queue)s AND t.status = 'pending'
      AND NOT t.is_gold AND NOT (t.id = ANY(%(exclude)s)) {not_mine} {open_video} {not_own_upload} {not_worked}
      AND EXISTS (SELECT 1 FROM moderation_reviewskip s WHERE s.task_id = t.id AND s.user_id = %(user)s)
    ORDER BY t.priority DESC, t.deadline, t.id LIMIT 1 FOR UPDATE SKIP LOCKED
),
pick AS (
    SELECT * FROM (
        SELECT 1 AS leg, id, claimed_by_id FROM own
        UNION ALL SELECT 2, id, claimed_by_id FROM lapsed
        UNION ALL SELECT 3, id, claimed_by_id FROM pending
        UNION ALL SELECT 4, id, claimed_by_id FROM skipped
    ) legs LIMIT 1
),
claimed AS (
    UPDATE moderation_reviewtask t
    SET status = 'claimed', claimed_by_id = %(user)s, lease_expires_at = %(lease)s,
        claimed_at = CASE WHEN pick.leg = 1 THEN t.claimed_at ELSE %(now)s END
    FROM pick WHERE t.id = pick.id
    RETURNING {columns}, pick.leg, pick.claimed_by_id AS previous
),
audit AS (
    INSERT INTO moderation_auditevent (actor_id, actor_name, action, object_type, object_id, payload, at)
    SELECT %(user)s, %(username)s, 'claim', 'reviewtask', claimed.id::text,
           jsonb_build_object('queue', %(slug)s::text) || CASE
               WHEN claimed.leg = 2 THEN jsonb_build_object('lapsed_claim_of', claimed.previous) ELSE '{{}}'::jsonb END,
           %(now)s
    FROM claimed WHERE claimed.leg <> 1
)
SELECT allowed.ok, claimed.* FROM allowed LEFT JOIN claimed ON true
WHERE CASE WHEN %(commit_async)s THEN set_config('synchronous_commit', 'off', true) = 'off' ELSE true END
"""
_TASK_COLUMNS = [f.column for f in ReviewTask._meta.concrete_fields]


def _claim_sql(*, queue: ReviewQueue, open_video: str) -> str:
    """``_CLAIM_SQL`` filled for ``queue`` and the visibility clause ``open_video`` (``review_open_video_clause``): the
    one place that formats it, so a benchmark's plan printout runs the statement the claim runs."""
    return _CLAIM_SQL.format(
        not_mine=NOT_MINE_SQL,
        open_video=open_video,
        not_own_upload=NOT_OWN_UPLOAD_SQL,
        not_worked=NOT_WORKED_BEFORE_SQL,
        columns=", ".join(f"t.{c}" for c in _TASK_COLUMNS),
    )


def _claim_commits_alone() -> bool:
    """Whether the claim statement is its own transaction (autocommit, no caller's ``atomic`` block): then it commits
    without waiting for its WAL to reach the disk (``_CLAIM_SQL``). Inside a caller's transaction (a skip, a gold
    claim) the caller's commit keeps the durability it has."""
    return connection.get_autocommit() and not connection.in_atomic_block


def _claim_statement(
    *, user: User, queue: ReviewQueue, exclude_ids: Collection[int], take_new: bool, now: Any
) -> ReviewTask | None:
    """Run ``_CLAIM_SQL``: the claimed (or renewed own) task, ``None`` when nothing is claimable.

    ``take_new=False`` only renews the reviewer's own open claim."""
    open_video, open_params = review_open_video_clause(user=user)
    sql = _claim_sql(queue=queue, open_video=open_video)
    params = {
        "superuser": bool(user.is_superuser),
        "queue": queue.pk,
        "user": user.pk,
        "username": user.get_username(),
        "slug": queue.slug,
        "exclude": [int(pk) for pk in exclude_ids],
        "take_new": take_new,
        "now": now,
        "lease": _lease_end(),
        "commit_async": _claim_commits_alone(),
        **open_params,
    }
    # Prepared (``prepared_cursor``): the rule compiled into four legs takes ~20 ms to plan, ~1 ms to run.
    with prepared_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if not row[0]:
        raise ModerationError(f"You may not work the queue “{queue.name}”.")
    if row[1] is None:
        return None
    values = row[1 : 1 + len(_TASK_COLUMNS)]
    task = ReviewTask.from_db(connection.alias, [f.attname for f in ReviewTask._meta.concrete_fields], values)
    task.queue = queue
    return task


def review_claim_next(
    *, user: User, queue: ReviewQueue | None = None, exclude_ids: Collection[int] = ()
) -> ReviewTask | None:
    """Give ``user`` one item to review from ``queue`` (default queue), or ``None`` when it has
    nothing claimable for them.

    - The user's own open claim comes first, the earliest claimed (its lease is renewed — also when
      it lapsed but no one else took it), so reloading or pressing "next" twice never hoards items
      and an item claimed ahead (``review_claim_ahead``) is served after the current one.
    - At the queue's gold rate a gold item (known answer) is served instead, to score the reviewer.
    - Otherwise an item whose lease lapsed is taken back first, then the first pending item by
      priority then deadline. Items the user skipped come last: they return to that user only when
      nothing else is claimable (a skip says "someone else, or later"; other reviewers see them in
      their place). Rows another transaction is claiming right now are skipped, never
      waited on. In a queue needing N reviews, items the user already holds or reviewed are passed
      over, so their N reviews come from N different people.
    - Items whose video the user may not open (``video_open_to_q``) are passed over, their own claims too: in a
      tags queue (a tags item opens nothing) the video may have been restricted after its item was made.
    - Items whose video the user uploaded (``Video.created_by``) are passed over, for everyone, admins included:
      a reviewer never decides their own content (``NOT_OWN_UPLOAD_SQL``); another reviewer takes them.

    One database round trip in the common case (see ``_CLAIM_SQL``).
    """
    queue = queue or review_queue_default()
    if not user.is_active or not user.has_perm(Perm.REVIEW_VIDEO):
        raise ModerationError(f"You may not work the queue “{queue.name}”.")
    now = timezone.now()
    if queue.gold_rate > 0 and rng.random() < queue.gold_rate:
        with transaction.atomic():
            # One gold claim of a reviewer at a time (two tabs at the same instant): each found no claim of theirs
            # and made a gold item, so the reviewer held two. The later waits here, then finds the earlier's item
            # as its own claim.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('moderation.gold_claim'), %s)", [user.pk])
            own = _claim_statement(user=user, queue=queue, exclude_ids=exclude_ids, take_new=False, now=now)
            if own is not None:
                return own
            gold = _claim_gold(user=user, queue=queue, now=now)
            if gold is not None:
                audit_event_record(actor=user, action="claim", obj=gold, payload={"queue": queue.slug})
                return gold
    return _claim_statement(user=user, queue=queue, exclude_ids=exclude_ids, take_new=True, now=now)


def review_claim_next_of(*, user: User, queues: Sequence[ReviewQueue]) -> ReviewTask | None:
    """The first item ``user`` can claim from ``queues``, tried in order (``review_claim_next`` on each).

    The queue list's "n" ("claim next from the most urgent queue with work") chooses its queue when the
    page is drawn: when that queue was emptied meanwhile, the next queue with work serves it instead of
    an "empty" answer while other work waits.
    """
    for queue in queues:
        task = review_claim_next(user=user, queue=queue)
        if task is not None:
            return task
    return None


def review_claim_ahead(*, user: User, task: ReviewTask, exclude_ids: Collection[int] = ()) -> ReviewTask | None:
    """Claim the item that follows ``task`` for the same reviewer, so the screen can preload it and
    submit-and-next shows it at once.

    It is an ordinary claim: visible as this reviewer's (``claimed_by``), held by a lease, released
    on logout and taken back by others when the lease lapses. At most one item is held ahead per
    queue: when the reviewer already holds another item there, that one is returned (lease renewed).
    """
    return review_claim_next(user=user, queue=task.queue, exclude_ids=[task.pk, *exclude_ids])


def _unclaim(task: ReviewTask) -> None:
    if task.is_gold:
        # Gold tasks are made per reviewer at claim time; one put back is simply dropped.
        task.delete()
        return
    review_queue_counts_forget(queue_ids=[task.queue_id])
    task.status = ReviewTask.Status.PENDING
    task.claimed_by = None
    task.claimed_at = None
    task.lease_expires_at = None
    task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])


def _lock_owned(task: ReviewTask, user: User, *, with_decision: bool = False) -> ReviewTask:
    """Lock the task row and check ``user`` still holds it. ``with_decision`` (a submit) also loads
    and locks its decision, so the N reviews of one item settle one after another and the last one
    sees all the others (``_settle``); other items' submits never wait on each other."""
    if with_decision:
        rows = ReviewTask.objects.select_for_update(of=("self", "decision"))
        rows = rows.select_related("queue", "decision__policy_version__policy", "decision__video")
    else:
        rows = ReviewTask.objects.select_for_update(of=("self",)).select_related("queue")
    # Whether the user may still work the queue as its groups say now (``_may_still_work``), in the same statement.
    groups = ReviewQueue.allowed_groups.through.objects.filter(reviewqueue_id=OuterRef("queue_id"))
    rows = rows.annotate(
        queue_open_to_user=~Exists(groups) | Exists(groups.filter(group__user=user.pk)), queue_restricted=Exists(groups)
    )
    locked = rows.filter(pk=task.pk).first()
    if locked is None:  # removed since the screen read it: a gold item given back in another tab, a video deleted
        raise ModerationError(GONE)
    if locked.status == ReviewTask.Status.DONE:
        raise ModerationError(ALREADY_REVIEWED)
    if locked.status == ReviewTask.Status.ESCALATED:
        raise ModerationError(ESCALATED)
    if not locked.is_held_by(user):
        raise ModerationError(NOT_CLAIMED if locked.claimed_by_id is None else NO_LONGER_YOURS)
    return locked


def review_task_complete(*, task: ReviewTask, status: str) -> None:
    """Close a task whose row the caller has locked: reviewed (``DONE``) or handed to a senior (``ESCALATED``)."""
    task.status = status
    task.completed_at = timezone.now()
    task.save(update_fields=["status", "completed_at"])
    if not task.is_gold:  # gold items are not counted
        review_queue_counts_forget(queue_ids=[task.queue_id])


def _hand_on(decision: Decision, queue: ReviewQueue, *, deadline: datetime | None) -> tuple[ReviewTask, bool]:
    """The decision's task in another queue (a senior or adjudication queue), made once, keeping the SLA
    deadline of the task it came from; ``(task, created)``."""
    task, created = ReviewTask.objects.get_or_create(
        decision=decision,
        queue=queue,
        slot=0,
        is_gold=False,
        defaults={"priority": queue.priority + _item_priority(decision, queue), "deadline": deadline},
    )
    if created:
        review_queue_counts_forget(queue_ids=[queue.pk])
    return task, created


@transaction.atomic
def review_release(*, task: ReviewTask, user: User) -> ReviewTask:
    """Put the user's claimed item back in the queue for anyone to take."""
    locked = _lock_owned(task, user)
    audit_event_record(actor=user, action="release", obj=locked, payload={"queue": locked.queue.slug})
    _unclaim(locked)
    return locked


@transaction.atomic
def review_release_hidden(*, user: User, queues: Sequence[ReviewQueue]) -> list[ReviewTask]:
    """Hand back the items ``user`` holds in ``queues`` whose video was hidden from them since they claimed it
    (``review_tasks_held_hidden``: routed to a restricted queue they are not in), audited as a release. The claim
    passes over such an item and no screen opens it to them, so it stayed theirs, unseen, until its lease lapsed,
    kept from the reviewers who may open it. Called by "Claim next" before it claims; returns the items handed back."""
    held = list(review_tasks_held_hidden(user=user, queues=queues).select_for_update(of=("self",)))
    for task in held:
        payload = {"queue": task.queue.slug, "no_longer_open": True}
        audit_event_record(actor=user, action="release", obj=task, payload=payload)
        _unclaim(task)
    return held


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
def review_claims_release_not_allowed(*, user_ids: Collection[int]) -> int:
    """Put back at once every item held by one of ``user_ids`` who may no longer work its queue
    (``review_queue_may_work``: deactivated, no longer a reviewer, taken out of the groups the queue is restricted
    to); returns how many. Each is audited as a ``release`` with ``roles_changed`` (the submit's own refusal does
    the same). Without this such items stayed held until the lease lapsed, closed to every other reviewer."""
    held = list(
        ReviewTask.objects.select_for_update(of=("self",))
        .filter(status=ReviewTask.Status.CLAIMED, claimed_by_id__in=list(user_ids))
        .select_related("queue")
        .order_by("pk")
    )
    users = {user.pk: user for user in User.objects.filter(pk__in={task.claimed_by_id for task in held})}
    released = 0
    for task in held:
        user = users[task.claimed_by_id]  # type: ignore[index]
        if not review_queue_may_work(user=user, queue=task.queue):
            _release_no_longer_allowed(task, user)
            released += 1
    return released


def _claims_recheck_after_commit(user_ids: Collection[int]) -> None:
    ids = sorted({int(pk) for pk in user_ids})
    if ids:  # after the commit: the whole change is saved (an admin form saves the user, then the groups)
        transaction.on_commit(lambda: review_claims_release_not_allowed(user_ids=ids))


def review_claims_on_user_saved(
    sender: Any, instance: Any, created: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    """``post_save`` receiver for users (connected in ``moderation.apps``): deactivated, made not superuser. A
    sign-in's ``last_login`` save changes nothing here."""
    if not created and (update_fields is None or {"is_active", "is_superuser"} & set(update_fields)):
        _claims_recheck_after_commit([instance.pk])


def review_claims_on_access_changed(
    sender: Any, instance: Any, action: str, reverse: bool, model: Any, pk_set: Any = None, **kwargs: Any
) -> None:
    """``m2m_changed`` receiver for a user's groups and permissions and a group's permissions (connected in
    ``moderation.apps``): whoever lost access this way gives back the items they may no longer work. Every way a
    role or group is taken away (the admin's user or group form, a shell, a command) goes through these."""
    if action not in ("post_remove", "pre_clear"):
        return
    if isinstance(instance, User):
        _claims_recheck_after_commit([instance.pk])
    elif isinstance(instance, Group):  # a group's permissions, or members removed from the group's side
        if model is User and action == "post_remove":
            _claims_recheck_after_commit(pk_set or ())
        else:
            _claims_recheck_after_commit(instance.user_set.values_list("pk", flat=True))
    elif pk_set is not None or action == "pre_clear":  # a permission taken from groups or users, from its side
        if model is Group:
            groups = Group.objects.filter(pk__in=pk_set) if pk_set else instance.group_set.all()
            _claims_recheck_after_commit(User.objects.filter(groups__in=groups).values_list("pk", flat=True))
        elif model is User:
            _claims_recheck_after_commit(pk_set or instance.user_set.values_list("pk", flat=True))


def review_claims_on_group_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``pre_delete`` receiver for groups: its members may lose the queues restricted to it (or their role)."""
    _claims_recheck_after_commit(list(instance.user_set.values_list("pk", flat=True)))


@transaction.atomic
def review_skip(*, task: ReviewTask, user: User, reason: str) -> ReviewTask | None:
    """Pass on the user's claimed item, saying why (one of ``SKIP_REASONS``); it returns to the queue
    and the user gets the next one. When nothing else is claimable the user keeps their item, its lease
    renewed as a claim renews it (the screen says it "stays with you"; a lapsed lease left another reviewer
    free to take it and the screen still saying it had lapsed), and ``None`` is returned.
    """
    # Without invisible bidi controls (``shown_text``), as every reason others read: one of the listed reasons with
    # a mark pasted into it is that reason, never stored as text that displays as something else.
    reason = shown_text(reason or "").strip()
    if not reason:
        raise ModerationError("Say why you skip this item.")
    if reason not in SKIP_REASONS:
        raise ModerationError("Choose one of the listed reasons to skip this item.")
    locked = _lock_owned(task, user)
    nxt = review_claim_next(user=user, queue=locked.queue, exclude_ids=[locked.pk])
    if nxt is not None:
        ReviewSkip.objects.create(task=locked, user=user, reason=reason[:500])
        audit_event_record(
            actor=user, action="skip", obj=locked, payload={"queue": locked.queue.slug, "reason": reason[:500]}
        )
        _unclaim(locked)
    else:
        locked.lease_expires_at = _lease_end()
        locked.save(update_fields=["lease_expires_at"])
    return nxt


NO_LONGER_ALLOWED = (
    "You may no longer work the queue “{queue}”: your roles or groups changed since you claimed this item. Nothing "
    "was recorded, and the item went back to the queue for a reviewer who may work it."
)


def _may_still_work(locked: ReviewTask, user: User) -> bool:
    """Whether ``user`` may still work ``locked``'s queue (``_lock_owned`` read the queue's groups with the lock):
    the claim statement checks this, and a reviewer deactivated, no longer a reviewer, or taken out of the groups
    a queue is restricted to since they claimed an item must not record a verdict or an escalation there."""
    if not user.is_active or not user.has_perm(Perm.REVIEW_VIDEO):
        return False
    return bool(user.is_superuser or getattr(locked, "queue_open_to_user", True))


def _release_no_longer_allowed(locked: ReviewTask, user: User) -> None:
    """Put back the item of a reviewer who may no longer work its queue (in the caller's transaction, which then
    commits): it goes to someone who may, not to the end of a lease."""
    audit_event_record(
        actor=user, action="release", obj=locked, payload={"queue": locked.queue.slug, "roles_changed": True}
    )
    _unclaim(locked)


def review_escalate(*, task: ReviewTask, user: User, reason: str) -> ReviewTask:
    """Hand the user's claimed item to the queue's senior queue; returns the senior task. Refused, and the claim
    released, when the user may no longer work the queue (``_may_still_work``)."""
    senior_task = _review_escalate(task=task, user=user, reason=reason)
    if senior_task is None:
        raise ModerationError(NO_LONGER_ALLOWED.format(queue=task.queue.name))
    return senior_task


@transaction.atomic
def _review_escalate(*, task: ReviewTask, user: User, reason: str) -> ReviewTask | None:
    reason = review_note_checked(reason, what="reason")
    if not reason:
        raise ModerationError("Say why you escalate this item.")
    locked = _lock_owned(task, user)
    if not _may_still_work(locked, user):
        _release_no_longer_allowed(locked, user)
        return None
    senior = locked.queue.escalation_queue
    if senior is None:
        raise ModerationError(f"The queue “{locked.queue.name}” has no senior queue to escalate to.")
    senior_task, _ = _hand_on(locked.decision, senior, deadline=locked.deadline)
    review_task_complete(task=locked, status=ReviewTask.Status.ESCALATED)
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


def _final_severity(decision: Decision, verdict: str, label: str, severity: str) -> str:
    """The severity a verdict with ``label`` stores: the one given, if it fits the label. Left empty, it is the
    only one that fits (the safe label's "none", a one-level tag), or on an approval the model's own severity
    (approving keeps the model's whole verdict); otherwise the verdict is refused: a violation always has a
    severity, and the policy names no default one to guess."""
    allowed = decision.policy_version.spec().severities_for(label)
    severity = (severity or "").strip().lower()
    if not severity:
        if len(allowed) == 1:
            return allowed[0]
        if verdict == Review.Verdict.APPROVE and decision.severity in allowed:
            return decision.severity
        raise ModerationError(f"“{label}” is a violation: choose its severity ({', '.join(allowed)}).")
    if severity not in allowed:
        if severity == Review.Severity.NONE:
            raise ModerationError(f"“{label}” is a violation: choose its severity ({', '.join(allowed)}).")
        raise ModerationError(f"Severity “{severity}” does not fit “{label}”; choose {', '.join(allowed)}.")
    return severity


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
        # One upsert statement (INSERT … ON CONFLICT DO UPDATE) on the one-label-per-source constraint.
        ItemLabel.objects.bulk_create(
            [
                ItemLabel(
                    video_id=decision.video_id,
                    source=ItemLabel.Source.REVIEW,
                    label=review.label,
                    policy_version=decision.policy_version,
                )
            ],
            update_conflicts=True,
            unique_fields=["video", "source"],
            update_fields=["label", "policy_version", "updated_at"],
        )
        event_label_final(
            video_id=decision.video_id,
            label=review.label,
            source=ItemLabel.Source.REVIEW,
            policy_version=decision.policy_version,
            video=decision._state.fields_cache.get("video"),
        )
        return
    if len(labels) > 1:
        target = review_queue_adjudication_for(queue=task.queue)
        adjudication, created = _hand_on(decision, target, deadline=task.deadline)
        if created:
            audit_event_record(
                actor=user,
                action="disagreement",
                obj=adjudication,
                payload={"queue": task.queue.slug, "to_queue": target.slug, "labels": sorted(labels)},
            )


def _resent(task: ReviewTask, user: User, verdict: str, label: str) -> Review | None:
    earlier = Review.objects.filter(task_id=task.pk, reviewer=user, verdict=verdict).first()
    if earlier is None or (verdict == Review.Verdict.OVERRIDE and earlier.label != (label or "").strip()):
        return None
    return earlier


# A reviewer's note on a verdict (shown beside the verdict to later reviewers and adjudicators).
REVIEW_NOTE_MAX_CHARS = 4000


def review_note_checked(note: str | None, *, what: str = "note") -> str:
    """A reviewer's note (on a verdict, on a reproduction pair; ``what``: a reason to escalate, to reject a
    correction, an adjudication's note) without its outer blanks; one over ``REVIEW_NOTE_MAX_CHARS`` is refused
    with the limit, never cut short behind the reviewer's back. Unbounded, a 9 MB reason was stored and drawn on
    every screen that shows it (the senior reviewer's item, the correction's author). Stored without invisible bidi
    controls (``shown_text``): others read it, and one could make it display as something it does not say."""
    note = shown_text(note or "").strip()
    if len(note) > REVIEW_NOTE_MAX_CHARS:
        raise ModerationError(
            f"The {what} is {len(note):,} characters long; a {what} holds at most {REVIEW_NOTE_MAX_CHARS:,}. "
            "Shorten it: say why, not everything."
        )
    return note


def review_submit(
    *,
    task: ReviewTask,
    user: User,
    verdict: str,
    label: str = "",
    note: str = "",
    severity: str = "",
    resend_ok: bool = False,
) -> Review:
    """Record the reviewer's verdict on the model's decision and close the task.

    - ``approve`` stores the model's own label; ``override`` needs a different label of the
      decision's policy version. ``severity`` must fit the final label (``PolicySpec.severities_for``);
      left empty it is filled in only where one value fits, or on an approval with the model's own severity:
      a violation verdict without a severity is refused and nothing is saved (``_final_severity``).
    - Ownership is what counts, not the clock: a late submit after the lease lapsed is accepted as
      long as the reviewer still holds the claim (no one else claimed it meanwhile). Once someone
      else has claimed it the submit is refused, so two people never decide the same item.
    - A settled verdict (all of the queue's N reviews agree, or an adjudication) is stored as the
      video's ``ItemLabel`` from human review; N reviews that disagree open an adjudication task.
      A gold item only scores the reviewer against its known answer.
    - A second submit (double click, resent form) is refused with "Already reviewed"; the task row
      lock plus the one-to-one ``Review.task`` make it record exactly one verdict. With ``resend_ok``
      (a client that retries after losing the answer) the same reviewer's same verdict returns the
      review already recorded instead; a different verdict is still refused.
    - A reviewer who may no longer work the queue (deactivated, no longer a reviewer, taken out of its groups)
      is refused, and their claim released so that someone who may takes the item (``_may_still_work``).
    """
    review = _review_submit(
        task=task, user=user, verdict=verdict, label=label, note=note, severity=severity, resend_ok=resend_ok
    )
    if review is None:
        raise ModerationError(NO_LONGER_ALLOWED.format(queue=task.queue.name))
    return review


@transaction.atomic
def _review_submit(
    *, task: ReviewTask, user: User, verdict: str, label: str, note: str, severity: str, resend_ok: bool
) -> Review | None:
    note = review_note_checked(note)
    try:
        locked = _lock_owned(task, user, with_decision=True)  # a reviewed task is DONE: refused there
    except ModerationError as exc:
        earlier = _resent(task, user, verdict, label) if resend_ok and str(exc) == ALREADY_REVIEWED else None
        if earlier is None:
            raise
        return earlier
    if not _may_still_work(locked, user):
        _release_no_longer_allowed(locked, user)
        return None
    if locked.queue.kind == ReviewQueue.Kind.TAGS:
        # A tags item is closed by its tags (tags_review_submit). A verdict on it would be a trusted label
        # settled by one reviewer outside the moderation queues' consensus and group restrictions.
        raise ModerationError("This is a tags item: it takes tags on its tag screen, not a verdict.")
    decision = locked.decision
    if decision.video.created_by_id is not None and decision.video.created_by_id == user.pk:
        # The claim never hands it out (``NOT_OWN_UPLOAD_SQL``); a claim held from before that rule is refused here.
        raise ModerationError(OWN_UPLOAD)
    worked = None if locked.is_gold else review_worked_before(task=locked, user=user)
    if worked is not None:
        # The claim never hands it out (``NOT_WORKED_BEFORE_SQL``); a claim held from before that rule is refused here.
        raise ModerationError(f"{review_worked_before_text(earlier=worked)} Release it for another reviewer.")
    final_label = _final_label(decision, verdict, label)
    final_severity = _final_severity(decision, verdict, final_label, severity)
    gold_correct = None
    if locked.is_gold:
        known = ItemLabel.objects.filter(video_id=decision.video_id, source=ItemLabel.Source.IMPORT).first()
        gold_correct = known is not None and known.label == final_label

    try:
        review = Review.objects.create(
            task=locked,
            decision=decision,
            reviewer=user,
            policy_version=decision.policy_version,
            verdict=verdict,
            label=final_label,
            severity=final_severity,
            note=note,
            gold_correct=gold_correct,
        )
    except IntegrityError as exc:  # one review per task (a review whose task is not marked done): refuse
        raise ModerationError(ALREADY_REVIEWED) from exc
    review_task_complete(task=locked, status=ReviewTask.Status.DONE)
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
            "severity": final_severity,
            "gold": locked.is_gold,
            **({"gold_correct": gold_correct} if locked.is_gold else {}),
        },
    )
    if not locked.is_gold:
        # A platform is no member of a restricted queue's groups: its slug (a senior queue's, "legal-counsel") is
        # not told in the webhook, as no screen tells it to those outside them (``review_queue_named_for``).
        shown_slug = RESTRICTED_QUEUE_SHOWN if getattr(locked, "queue_restricted", False) else locked.queue.slug
        event_review_completed(review=review, queue_slug=shown_slug)
        _settle(locked, review, user)
    return review


# --- retrying a failed video ------------------------------------------------------------------------


def video_retry_failed(*, video_id: int, by: User) -> Video:
    """Queue the stage a failed video stopped at again: inference (``run_inference``) when it failed
    there, else the media pipeline (``process_video``, which redoes only the stages not finished). The
    video leaves "Failed" at once (ready for inference, or uploaded and queued), its error is cleared,
    and the audit log keeps who asked, the stage and the error it had (``video.retry``).

    Refused with a ``ModerationError`` a user can read when the video is not failed (a double click's
    second request, or it was retried already), when its file is not a video at all (``Video.ErrorKind.NOT_VIDEO``:
    no retry can process it; ``video_failure_dismiss``) or is damaged (``Video.ErrorKind.DAMAGED``: the same), when its video file is gone from media storage (upload
    it again), when the store does not answer, and when no policy applies to new videos. Idempotent:
    the row lock makes a second request see the first one's result.
    """
    from moderation.policies.services import policy_versions_auto_applied

    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.status != Video.Status.FAILED:
            raise ModerationError(
                f"“{video}” is not failed (it is {video.get_status_display().lower()}, "
                f"{video.get_stage_display().lower()}): there is nothing to retry."
            )
        if video.error_kind == Video.ErrorKind.DAMAGED:
            raise ModerationError(
                f"“{video}”: this file is damaged — upload it again ({video.error}). Processing the same file "
                "again cannot succeed: Dismiss it."
            )
        if video.error_kind == Video.ErrorKind.NOT_VIDEO:
            raise ModerationError(
                f"“{video}” is not a video ({video.error}): processing it again cannot succeed. Dismiss it, and "
                "upload the video itself."
            )
        inference = video.stage == Video.Stage.INFERENCE
        if inference:
            if not policy_versions_auto_applied():
                raise ModerationError(
                    "No policy applies to new videos, so inference would fail again: activate one first "
                    "(`manage.py bootstrap`)."
                )
        elif video.file:
            try:
                gone = storage.missing_names([str(video.file.name)])
            except storage.StorageUnavailable as exc:
                raise ModerationError(f"Media storage does not answer ({exc}); try the retry again later.") from exc
            if gone:
                raise ModerationError(
                    f"The video file {video.file.name} is missing from media storage: processing cannot be "
                    "retried. Upload the video again."
                )
        previous = video.error
        video.error, video.error_for_sender = "", False
        if inference:
            video.status = Video.Status.READY
            enqueue("moderation.inference.tasks.run_inference", video.pk)
        else:
            video.status = Video.Status.UPLOADED
            enqueue("moderation.media.tasks.process_video", video.pk)
        video.save(update_fields=["status", "error", "error_for_sender", "updated_at"])
        audit_event_record(
            actor=by, action="video.retry", obj=video, payload={"stage": video.stage, "error": previous[:2000]}
        )
    logger.info("video %s: %s queued again by %s", video.pk, video.stage, by.get_username())
    return video


def video_failure_dismiss(*, video_id: int, by: User) -> Video:
    """Dismiss a failed video whose file is not a video at all or is damaged (``Video.FILE_FAULT_KINDS``), which no retry
    can process: recorded with who and when (``failure_dismissed_at``, the audit log's ``video.dismiss``), it is no
    longer counted among the failed videos the ops page asks someone to handle. The video and its error stay.

    Refused with a ``ModerationError`` a user can read when the video is not failed, failed for another reason (it
    has Retry) or was dismissed already (a double click's second request)."""
    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        if video.status != Video.Status.FAILED or video.error_kind not in Video.FILE_FAULT_KINDS:
            raise ModerationError(
                f"“{video}” is not a failed upload of a file that is not a video or is damaged: there is nothing "
                "to dismiss."
            )
        if video.failure_dismissed_at is not None:
            raise ModerationError(f"“{video}” was dismissed already.")
        video.failure_dismissed_at, video.failure_dismissed_by = timezone.now(), by
        video.save(update_fields=["failure_dismissed_at", "failure_dismissed_by", "updated_at"])
        audit_event_record(actor=by, action="video.dismiss", obj=video, payload={"error": video.error[:2000]})
    return video
