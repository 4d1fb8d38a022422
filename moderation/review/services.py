"""Review queue writes: claiming with leases, releasing, skipping and submitting verdicts.

A claim is a lease: ``claimed_by`` plus ``lease_expires_at``. Claims are taken with
``SELECT … FOR UPDATE SKIP LOCKED`` so concurrent reviewers never wait on, or get, the same row.
A lapsed lease makes the item claimable again; until someone else actually claims it, the
original reviewer still owns it and may submit.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.review.models import ItemLabel, Review, ReviewTask

NO_LONGER_YOURS = "This item is no longer yours: your claim expired and it was given to someone else."
NOT_CLAIMED = "This item is not claimed by you; take it with “Claim next” from the queue."
ALREADY_REVIEWED = "Already reviewed: this item has a recorded verdict."


def _lease_end() -> Any:
    return timezone.now() + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)


def review_claim_next(*, user: User, queue: str = "default", exclude_ids: Collection[int] = ()) -> ReviewTask | None:
    """Give ``user`` one item to review, or ``None`` when the queue has nothing claimable.

    The user's own open claim comes first (its lease is renewed — also when it lapsed but no one
    else took it), so reloading or pressing "next" twice never hoards items. Otherwise the first
    pending item, or claimed item whose lease expired, by priority then age, is claimed; rows another
    transaction is claiming right now are skipped, never waited on.
    """
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
        task = (
            ReviewTask.objects.select_for_update(skip_locked=True)
            .filter(queue=queue)
            .filter(
                Q(status=ReviewTask.Status.PENDING) | Q(status=ReviewTask.Status.CLAIMED, lease_expires_at__lte=now)
            )
            .exclude(pk__in=list(exclude_ids))
            .order_by("-priority", "created_at", "pk")
            .first()
        )
        if task is None:
            return None
        task.status = ReviewTask.Status.CLAIMED
        task.claimed_by = user
        task.claimed_at = now
        task.lease_expires_at = _lease_end()
        task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])
        return task


def _unclaim(task: ReviewTask) -> None:
    task.status = ReviewTask.Status.PENDING
    task.claimed_by = None
    task.claimed_at = None
    task.lease_expires_at = None
    task.save(update_fields=["status", "claimed_by", "claimed_at", "lease_expires_at"])


@transaction.atomic
def review_release(*, task: ReviewTask, user: User) -> ReviewTask:
    """Put the user's claimed item back in the queue for anyone to take."""
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    if locked.status == ReviewTask.Status.DONE:
        raise ModerationError(ALREADY_REVIEWED)
    if locked.status != ReviewTask.Status.CLAIMED or locked.claimed_by_id != user.pk:
        raise ModerationError(NOT_CLAIMED)
    _unclaim(locked)
    return locked


@transaction.atomic
def review_release_all(*, user: User) -> int:
    """Release every open claim of ``user`` (on logout); returns how many were released."""
    return ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, claimed_by=user).update(
        status=ReviewTask.Status.PENDING, claimed_by=None, claimed_at=None, lease_expires_at=None
    )


def review_release_on_logout(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """``user_logged_out`` receiver (connected in ``moderation.apps``): a reviewer who leaves frees their items."""
    if user is not None and user.is_authenticated:
        review_release_all(user=user)


@transaction.atomic
def review_skip(*, task: ReviewTask, user: User) -> ReviewTask | None:
    """Swap the user's claimed item for the next one; the skipped item returns to the queue.

    When nothing else is claimable the user keeps their item and ``None`` is returned.
    """
    locked = ReviewTask.objects.select_for_update().get(pk=task.pk)
    if locked.status == ReviewTask.Status.DONE:
        raise ModerationError(ALREADY_REVIEWED)
    if locked.status != ReviewTask.Status.CLAIMED or locked.claimed_by_id != user.pk:
        raise ModerationError(NOT_CLAIMED if locked.claimed_by_id is None else NO_LONGER_YOURS)
    nxt = review_claim_next(user=user, queue=locked.queue, exclude_ids=[locked.pk])
    if nxt is not None:
        _unclaim(locked)
    return nxt


@transaction.atomic
def review_submit(*, task: ReviewTask, user: User, verdict: str, label: str = "", note: str = "") -> Review:
    """Record the reviewer's verdict on the model's decision and close the task.

    - ``approve`` stores the model's own label; ``override`` needs a different label of the
      decision's policy version.
    - Ownership is what counts, not the clock: a late submit after the lease lapsed is accepted as
      long as the reviewer still holds the claim (no one else claimed it meanwhile). Once someone
      else has claimed it the submit is refused, so two people never decide the same item.
    - The verdict is also stored as the video's ``ItemLabel`` from human review.
    - A second submit (double click, resent form) is refused with "Already reviewed"; the task row
      lock plus the one-to-one ``Review.task`` make it record exactly one verdict.
    """
    locked = ReviewTask.objects.select_for_update().select_related("decision__policy_version").get(pk=task.pk)
    if locked.status == ReviewTask.Status.DONE or Review.objects.filter(task=locked).exists():
        raise ModerationError(ALREADY_REVIEWED)
    if locked.claimed_by_id != user.pk or locked.status != ReviewTask.Status.CLAIMED:
        raise ModerationError(NO_LONGER_YOURS if locked.claimed_by_id is not None else NOT_CLAIMED)

    decision = locked.decision
    policy_version = decision.policy_version
    if verdict == Review.Verdict.APPROVE:
        final_label = decision.label or policy_version.safe_label
    elif verdict == Review.Verdict.OVERRIDE:
        names = policy_version.label_names()
        label = (label or "").strip()
        if not label:
            raise ModerationError("Choose the label that replaces the model's verdict.")
        if label not in names:
            raise ModerationError(f"“{label}” is not a label of policy {policy_version}.")
        if label == decision.label:
            raise ModerationError("That is the model's own label; use Approve to keep it.")
        final_label = label
    else:
        raise ModerationError("Unknown verdict; choose Approve or Override.")

    review = Review.objects.create(
        task=locked,
        decision=decision,
        reviewer=user,
        policy_version=policy_version,
        verdict=verdict,
        label=final_label,
        note=(note or "").strip(),
    )
    # The human verdict becomes the item's trusted label (the latest review wins).
    ItemLabel.objects.update_or_create(
        video_id=decision.video_id,
        source=ItemLabel.Source.REVIEW,
        defaults={"label": final_label, "policy_version": policy_version},
    )
    locked.status = ReviewTask.Status.DONE
    locked.completed_at = timezone.now()
    locked.save(update_fields=["status", "completed_at"])
    return review
