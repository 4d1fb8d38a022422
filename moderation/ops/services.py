"""Operators' actions from the ops page that change state, each with its audit event."""

from __future__ import annotations

import dataclasses

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.models import MissingDecisionRepair
from moderation.inference.selectors import auto_applied_policy_ids, videos_missing_decision_to_queue
from moderation.inference.services import (
    missing_decision_dismiss,
    missing_decision_retry,
    missing_decisions_queue,
    missing_decisions_retry,
)
from moderation.media.models import Video
from moderation.policies.models import Policy
from moderation.review.services import RoutingRepair, audit_event_record, review_routing_repair
from workbench.pagination import COUNT_CAP, CappedCount


def ops_routing_repair(*, limit: int | None = None, dry_run: bool = False) -> RoutingRepair:
    """The routing panel's Repair routing (``review_routing_repair``)."""
    return review_routing_repair(limit=limit, dry_run=dry_run)


def ops_missing_decisions_retry() -> list[int]:
    """The routing panel's Retry of every given-up half-decided video (``missing_decisions_retry``)."""
    return missing_decisions_retry()


def ops_missing_decision_retry(*, video_id: int, by: User) -> MissingDecisionRepair:
    """One more try at one video's missing decisions (``missing_decision_retry``), in the audit log with who: the
    repair row is deleted once the video lacks nothing, the event stays."""
    with transaction.atomic():
        repair = missing_decision_retry(video_id=video_id, by=by)
        audit_event_record(
            actor=by,
            action="missing_decisions.retried",
            obj=Video(pk=video_id),
            payload={"failed_tries": repair.attempts, "error": repair.error[:500]},
        )
    return repair


def ops_missing_decision_dismiss(*, video_id: int, by: User) -> MissingDecisionRepair:
    """Dismiss one given-up video's missing decisions (``missing_decision_dismiss``), in the audit log with who."""
    with transaction.atomic():
        repair = missing_decision_dismiss(video_id=video_id, by=by)
        audit_event_record(
            actor=by,
            action="missing_decisions.dismissed",
            obj=Video(pk=video_id),
            payload={"failed_tries": repair.attempts, "error": repair.error[:500]},
        )
    return repair


@dataclasses.dataclass(frozen=True)
class PolicyMissingRepair:
    """What a policy's "Repair now" did: the videos whose missing decisions it queued (at most
    ``ROUTING_REPAIR_BATCH``) and how many it left to a later repair, counted as far as ``COUNT_CAP``."""

    queued: list[int]
    left: CappedCount


def ops_policy_missing_repair(*, policy: Policy, by: User) -> PolicyMissingRepair:
    """A policy page's "Repair now": queue the missing decisions (``decide_missing_policies``, on the infer queue,
    idempotent) of the videos lacking a decision under ``policy``, as the routing repair does for every policy:
    not those queued already, given up after failing, nor dismissed, at most ``ROUTING_REPAIR_BATCH`` a press.
    In the audit log with who. Refused, with a message, for a policy that is not auto-applied (it decides on
    request: no video lacks its verdict)."""
    if policy.pk not in auto_applied_policy_ids():
        raise ModerationError(
            f"“{policy.name}” does not decide new videos (not auto-applied, or no active version): "
            "no video lacks its verdict, nothing to repair."
        )
    now = timezone.now()
    batch = int(settings.ROUTING_REPAIR_BATCH)
    with transaction.atomic():
        to_queue = videos_missing_decision_to_queue(now=now, policies=[policy.pk])
        queued = list(to_queue.values_list("pk", flat=True)[:batch])
        missing_decisions_queue(video_ids=queued, now=now)
        n = to_queue.exclude(pk__in=queued).order_by()[: COUNT_CAP + 1].count()
        left = CappedCount(min(n, COUNT_CAP), n <= COUNT_CAP)
        audit_event_record(
            actor=by,
            action="missing_decisions.policy_repair",
            obj=policy,
            payload={"queued": len(queued), "left": str(left)},
        )
    return PolicyMissingRepair(queued=queued, left=left)
