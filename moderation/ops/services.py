"""Operators' actions from the ops page that change state, each with its audit event."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction

from moderation.inference.models import MissingDecisionRepair
from moderation.inference.services import missing_decision_dismiss, missing_decision_retry, missing_decisions_retry
from moderation.media.models import Video
from moderation.ops.checks import ops_routing_checks_forget
from moderation.review.services import RoutingRepair, audit_event_record, review_routing_repair


def ops_routing_repair(*, limit: int | None = None, dry_run: bool = False) -> RoutingRepair:
    """The routing panel's Repair routing (``review_routing_repair``); the panel's kept checks are found again on
    its next load (``ops_routing_checks_forget``), so it shows what the repair left, not what it found before."""
    result = review_routing_repair(limit=limit, dry_run=dry_run)
    if not dry_run:
        ops_routing_checks_forget()
    return result


def ops_missing_decisions_retry() -> list[int]:
    """The routing panel's Retry of every given-up half-decided video (``missing_decisions_retry``); the panel's
    kept checks are found again on its next load."""
    queued = missing_decisions_retry()
    ops_routing_checks_forget()
    return queued


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
        ops_routing_checks_forget()
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
        ops_routing_checks_forget()
    return repair
