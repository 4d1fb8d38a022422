"""User-feedback writes: integrations and their tokens, batch ingest of platform events, aggregates."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from moderation.errors import ModerationError
from moderation.feedback.models import FeedbackAggregate, FeedbackEvent
from moderation.feedback.selectors import feedback_counts_compute
from moderation.integrations.models import Integration
from moderation.integrations.selectors import integration_video_by_external_id, videos_of_other_integrations
from moderation.media.models import Video
from moderation.signals import feedback_received

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_REASON_CHARS = 500
# Task evaluating the disagreement rules; named, not imported: annotation sits above moderation.
AGGREGATE_FIELDS = [
    "views",
    "watch_seconds",
    "reports",
    "likes",
    "dislikes",
    "shares",
    "appeals",
    "appeals_pending",
    "appeals_upheld",
    "appeals_overturned",
    "top_report_reasons",
    "last_event_at",
]


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    video_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "errors": self.errors}


class _RowError(Exception):
    pass


_EPOCH_STRING = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def _timestamp(value: Any) -> datetime:
    at: datetime | None
    if isinstance(value, bool) or value in (None, ""):
        raise _RowError("missing or invalid timestamp")
    # The schema's timestamp is a string ("ISO 8601 with timezone, or epoch seconds"): epoch seconds
    # arrive as "1767225600" as often as 1767225600.
    if isinstance(value, str) and _EPOCH_STRING.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise _RowError("invalid timestamp")
        latest = (timezone.now() + timedelta(days=1)).timestamp()
        if value > latest and 1e9 <= value / 1000 <= latest:
            # JavaScript's Date.now() and Java's currentTimeMillis(): they read as "out of range" or "in the
            # future", which sent the integrator looking at their clock instead of the unit.
            raise _RowError(
                f"timestamp {int(value)} looks like epoch milliseconds: send epoch seconds ({int(value // 1000)}) "
                "or ISO 8601"
            )
        try:
            at = datetime.fromtimestamp(value, tz=UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise _RowError("timestamp out of range") from exc
    elif isinstance(value, str):
        try:
            at = parse_datetime(value)
        except ValueError:
            at = None
        if at is None:
            raise _RowError("timestamp is not ISO 8601 (e.g. 2026-05-01T12:00:00Z) or epoch seconds")
        if timezone.is_naive(at):
            raise _RowError("timestamp needs a timezone (e.g. a trailing Z)")
        try:
            # In UTC, as ``since`` is read: PostgreSQL refuses offsets past ±15:59 that Python accepts (a
            # "-23:59" stopped the whole batch with a 500), and a far year moved by its offset overflows.
            at = at.astimezone(UTC)
        except (OverflowError, ValueError) as exc:
            raise _RowError("timestamp out of range") from exc
    else:
        raise _RowError("invalid timestamp")
    if at > timezone.now() + timedelta(days=1):
        raise _RowError("timestamp is in the future")
    return at


def _video_id(value: Any) -> int | None:
    """A video id given as a JSON integer or a string of ASCII digits; ``True``, ``20.5`` and "²" are not ids."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _text_field(row: dict[str, Any], name: str, *, max_len: int) -> str:
    """An optional text field: a JSON string (or a number, written as text) of at most ``max_len`` characters."""
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _RowError(f"{name} must be text")
    text = str(value)
    if len(text) > max_len:
        raise _RowError(f"{name} is longer than {max_len} characters ({len(text)})")
    return text


def _parse_row(row: Any, videos_by_ext: dict[str, int], video_ids: set[int]) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise _RowError("an event must be a JSON object")
    event_id = row.get("event_id")
    if not isinstance(event_id, str | int) or isinstance(event_id, bool) or not str(event_id).strip():
        raise _RowError("missing event_id")
    event_id = str(event_id).strip()
    if len(event_id) > 200:
        raise _RowError("event_id is longer than 200 characters")
    kind = row.get("type")
    if not isinstance(kind, str) or kind not in FeedbackEvent.Kind.values:
        raise _RowError(f"unknown event type {kind!r}; expected one of {', '.join(FeedbackEvent.Kind.values)}")
    if row.get("video_external_id") not in (None, ""):
        external_id = _text_field(row, "video_external_id", max_len=200)
        video_id = videos_by_ext.get(external_id)
        if video_id is None:
            raise _RowError(f"unknown video_external_id {external_id!r}")
    elif row.get("video_id") not in (None, ""):
        parsed_id = _video_id(row["video_id"])
        if parsed_id is None:
            raise _RowError(f"video_id must be a whole number (a video's id), not {str(row['video_id'])[:50]!r}")
        if parsed_id not in video_ids:
            raise _RowError(f"unknown video_id {parsed_id}")
        video_id = parsed_id
    else:
        raise _RowError("missing video_external_id (or video_id)")
    occurred_at = _timestamp(row.get("timestamp"))
    parsed: dict[str, Any] = {
        "event_id": event_id,
        "video_id": video_id,
        "kind": kind,
        "occurred_at": occurred_at,
        "reason": "",
        "seconds": None,
        "appeal_id": "",
        "outcome": "",
    }
    if kind == FeedbackEvent.Kind.REPORT:
        parsed["reason"] = _text_field(row, "reason", max_len=MAX_REASON_CHARS)
    elif kind == FeedbackEvent.Kind.WATCH_TIME:
        seconds = row.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
            raise _RowError("watch_time needs a number of seconds")
        if seconds < 0:
            raise _RowError("watch_time seconds cannot be negative")
        parsed["seconds"] = float(seconds)
    elif kind == FeedbackEvent.Kind.APPEAL:
        outcome = row.get("outcome") or FeedbackEvent.AppealOutcome.PENDING
        if not isinstance(outcome, str) or outcome not in FeedbackEvent.AppealOutcome.values:
            raise _RowError(f"unknown appeal outcome {outcome!r}; expected pending, upheld or overturned")
        parsed["outcome"] = outcome
        parsed["appeal_id"] = _text_field(row, "appeal_id", max_len=200) or event_id
    return parsed


_INSERT_SQL = """
INSERT INTO moderation_feedbackevent
    (integration_id, event_id, video_id, kind, occurred_at, reason, seconds, appeal_id, outcome, received_at)
SELECT %s, e.event_id, e.video_id, e.kind, e.occurred_at, e.reason, e.seconds, e.appeal_id, e.outcome, %s
FROM unnest(%s::text[], %s::bigint[], %s::text[], %s::timestamptz[], %s::text[], %s::float8[], %s::text[], %s::text[])
    AS e(event_id, video_id, kind, occurred_at, reason, seconds, appeal_id, outcome)
ON CONFLICT (integration_id, event_id) DO NOTHING
RETURNING video_id
"""


def feedback_events_ingest(*, integration: Integration, events: Any) -> IngestResult:
    """Store a batch of platform events; bad rows are reported per row and never stop the batch.

    Idempotent by ``(integration, event_id)``: a resent event counts as a duplicate, also within
    one batch. Valid rows go in with ONE ``INSERT … ON CONFLICT DO NOTHING`` (the database decides
    what is new, so concurrent resends cannot double count); the touched videos' aggregates are
    then recomputed and the disagreement rules are queued for them after commit.
    """
    if not isinstance(events, list):
        raise ModerationError('The body must be a JSON list of events (or {"events": [...]}).')
    if len(events) > MAX_BATCH:
        raise ModerationError(f"At most {MAX_BATCH} events per batch; got {len(events)}.")
    result = IngestResult()

    ext_ids = {
        str(r["video_external_id"])
        for r in events
        if isinstance(r, dict) and isinstance(r.get("video_external_id"), str | int) and r.get("video_external_id")
    }
    raw_ids: set[int] = set()
    for r in events:
        if isinstance(r, dict) and r.get("video_id") not in (None, "") and not r.get("video_external_id"):
            parsed_id = _video_id(r["video_id"])
            if parsed_id is not None:
                raw_ids.add(parsed_id)
    # The integration's own external ids first; then the workbench's (uploads, imports: no platform's).
    # Filtered on non-empty external ids, so no key is ever None.
    videos_by_ext = integration_video_by_external_id(integration=integration, external_ids=ext_ids)
    shared = Video.objects.filter(external_id__in=ext_ids - set(videos_by_ext)).values_list("external_id", "pk")
    videos_by_ext.update({ext: pk for ext, pk in shared if ext is not None})
    known_ids = set(Video.objects.filter(pk__in=raw_ids).values_list("pk", flat=True)) if raw_ids else set()
    # Another platform's videos are unknown here, as on every read: no events about them, and no telling
    # which of them exist.
    theirs = videos_of_other_integrations(integration=integration, video_ids=known_ids | set(videos_by_ext.values()))
    videos_by_ext = {ext: pk for ext, pk in videos_by_ext.items() if pk not in theirs}
    known_ids -= theirs

    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, raw in enumerate(events):
        try:
            row = _parse_row(raw, videos_by_ext, known_ids)
        except _RowError as exc:
            event_id = raw.get("event_id") if isinstance(raw, dict) else None
            result.errors.append({"index": index, "event_id": event_id, "error": str(exc)})
            continue
        if row["event_id"] in seen:
            result.duplicates += 1
            continue
        seen.add(row["event_id"])
        rows.append(row)

    if rows:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(
                    _INSERT_SQL,
                    [
                        integration.pk,
                        timezone.now(),
                        *[
                            [r[col] for r in rows]
                            for col in (
                                "event_id",
                                "video_id",
                                "kind",
                                "occurred_at",
                                "reason",
                                "seconds",
                                "appeal_id",
                                "outcome",
                            )
                        ],
                    ],
                )
                inserted = [video_id for (video_id,) in cursor.fetchall()]
            result.accepted = len(inserted)
            result.duplicates += len(rows) - len(inserted)
            result.video_ids = sorted(set(inserted))
            if result.video_ids:
                feedback_aggregates_refresh(video_ids=result.video_ids)
                # Annotation checks its disagreement rules on these (it subscribes; the periodic sweep catches up).
                feedback_received.send(sender=FeedbackEvent, video_ids=result.video_ids)
    Integration.objects.filter(pk=integration.pk).update(last_used_at=timezone.now())
    return result


@transaction.atomic
def feedback_aggregates_refresh(*, video_ids: list[int]) -> int:
    """Recompute the materialised aggregates of ``video_ids`` from their events (one upsert).

    The videos' rows are taken first, in id order: two batches about one video (a platform sending in parallel)
    count one after the other, the later one seeing the earlier one's events. Unlocked, each counted the events
    it could see (its own, not the other's uncommitted ones) and the later upsert wrote its count over the
    earlier one's: the aggregate lost a batch until the video's next event, and a disagreement rule read too few
    reports."""
    list(Video.objects.select_for_update(no_key=True).filter(pk__in=video_ids).order_by("pk").values_list("pk"))
    counts = feedback_counts_compute(video_ids=video_ids)
    objs = [FeedbackAggregate(video_id=vid, **row) for vid, row in counts.items()]
    FeedbackAggregate.objects.bulk_create(
        objs, update_conflicts=True, unique_fields=["video"], update_fields=[*AGGREGATE_FIELDS, "updated_at"]
    )
    return len(objs)
