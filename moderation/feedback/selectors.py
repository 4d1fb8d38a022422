"""User-feedback reads: per-video statistics (counts and rates) for the review screen, the CoT's
user-feedback stage and the disagreement rules."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Max, Q, Sum

from moderation.feedback.models import FeedbackAggregate, FeedbackEvent

Kind = FeedbackEvent.Kind
Outcome = FeedbackEvent.AppealOutcome


def _rate(n: int, views: int) -> float | None:
    return round(n / views, 4) if views else None


def feedback_counts_compute(*, video_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Count the events of several videos from scratch, in three grouped queries (not per video)."""
    events = FeedbackEvent.objects.filter(video_id__in=video_ids)
    result: dict[int, dict[str, Any]] = {}
    for row in (
        events.values("video_id")
        .annotate(
            views=Count("pk", filter=Q(kind=Kind.WATCH_TIME)),
            watch_seconds=Sum("seconds", filter=Q(kind=Kind.WATCH_TIME)),
            reports=Count("pk", filter=Q(kind=Kind.REPORT)),
            likes=Count("pk", filter=Q(kind=Kind.LIKE)),
            dislikes=Count("pk", filter=Q(kind=Kind.DISLIKE)),
            shares=Count("pk", filter=Q(kind=Kind.SHARE)),
            last_event_at=Max("occurred_at"),
        )
        .order_by()
    ):
        result[row["video_id"]] = {
            "views": row["views"],
            "watch_seconds": float(row["watch_seconds"] or 0.0),
            "reports": row["reports"],
            "likes": row["likes"],
            "dislikes": row["dislikes"],
            "shares": row["shares"],
            "last_event_at": row["last_event_at"],
            "appeals": 0,
            "appeals_pending": 0,
            "appeals_upheld": 0,
            "appeals_overturned": 0,
            "top_report_reasons": [],
        }
    # An appeal is the platform's appeal id; its latest event carries its outcome (filed, then decided).
    latest: dict[tuple[int, str], str] = {}
    for video_id, appeal_id, outcome in (
        events.filter(kind=Kind.APPEAL)
        .order_by("video_id", "appeal_id", "occurred_at", "pk")
        .values_list("video_id", "appeal_id", "outcome")
    ):
        latest[(video_id, appeal_id)] = outcome or Outcome.PENDING
    for (video_id, _appeal), outcome in latest.items():
        counts = result[video_id]
        counts["appeals"] += 1
        counts[f"appeals_{outcome}"] += 1
    reasons: dict[int, Counter[str]] = {}
    for video_id, reason, n in (
        events.filter(kind=Kind.REPORT).exclude(reason="").values_list("video_id", "reason").annotate(n=Count("pk"))
    ):
        reasons.setdefault(video_id, Counter())[reason] = n
    for video_id, counter in reasons.items():
        result[video_id]["top_report_reasons"] = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    return result


def feedback_stats_for(*, video_id: int) -> dict[str, Any] | None:
    """A video's feedback as counts and rates, or ``None`` when no event was ever received.

    Reads the materialised :class:`FeedbackAggregate`; rates are per view (a view is a
    ``watch_time`` event) and ``None`` while there are no views.
    """
    agg = FeedbackAggregate.objects.filter(video_id=video_id).first()
    if agg is None:
        return None
    return feedback_stats_from(agg)


def feedback_stats_from(agg: FeedbackAggregate) -> dict[str, Any]:
    views = agg.views
    if agg.appeals_overturned:
        appeal_outcome = Outcome.OVERTURNED.value
    elif agg.appeals_upheld:
        appeal_outcome = Outcome.UPHELD.value
    elif agg.appeals_pending:
        appeal_outcome = Outcome.PENDING.value
    else:
        appeal_outcome = None
    return {
        "views": views,
        "avg_watch_seconds": round(agg.watch_seconds / views, 1) if views else None,
        "reports": agg.reports,
        "report_rate": _rate(agg.reports, views),
        "likes": agg.likes,
        "like_rate": _rate(agg.likes, views),
        "dislikes": agg.dislikes,
        "dislike_rate": _rate(agg.dislikes, views),
        "shares": agg.shares,
        "appeals": agg.appeals,
        "appeals_pending": agg.appeals_pending,
        "appeals_upheld": agg.appeals_upheld,
        "appeals_overturned": agg.appeals_overturned,
        "appeal_outcome": appeal_outcome,
        "top_report_reasons": [reason for reason, _n in agg.top_report_reasons],
    }


def feedback_prompt_stats(*, video_id: int) -> dict[str, Any]:
    """The statistics a model prompt gets: only what is known, no ``None`` noise; empty when no feedback."""
    stats = feedback_stats_for(video_id=video_id)
    if not stats:
        return {}
    return {k: v for k, v in stats.items() if v not in (None, [], "")}
