"""Operators' actions from the ops page that change state, each with its audit event."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from moderation.inference.models import MissingDecisionRepair
from moderation.inference.services import missing_decision_dismiss, missing_decision_retry, missing_decisions_retry
from moderation.media.models import Video
from moderation.review.services import RoutingRepair, audit_event_record, review_routing_repair


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
