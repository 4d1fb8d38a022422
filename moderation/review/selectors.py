"""Review queue reads: queue counts and everything the review screen shows about one item."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from moderation.review.models import ReviewTask

COT_STAGE_KEYS = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


def review_queue_stats(*, queue: str = "default") -> dict[str, int]:
    """Counts for the queue page; ``stale`` are claims whose lease lapsed (claimable again)."""
    now = timezone.now()
    return ReviewTask.objects.filter(queue=queue).aggregate(
        pending=Count("pk", filter=Q(status=ReviewTask.Status.PENDING)),
        claimed=Count("pk", filter=Q(status=ReviewTask.Status.CLAIMED)),
        stale=Count("pk", filter=Q(status=ReviewTask.Status.CLAIMED, lease_expires_at__lte=now)),
        done=Count("pk", filter=Q(status=ReviewTask.Status.DONE)),
    )


def review_task_open_for(*, user: User, queue: str = "default") -> ReviewTask | None:
    """The item ``user`` currently holds, if any (to offer "continue")."""
    return (
        ReviewTask.objects.filter(queue=queue, status=ReviewTask.Status.CLAIMED, claimed_by=user)
        .order_by("-lease_expires_at")
        .first()
    )


def review_task_get(*, task_id: int) -> ReviewTask:
    """One task with its decision, video, policy and model version, plus keyframes and segments prefetched."""
    return get_object_or_404(
        ReviewTask.objects.select_related(
            "decision__video", "decision__policy_version__policy", "decision__model_version", "claimed_by"
        ).prefetch_related("decision__video__keyframes", "decision__video__segments"),
        pk=task_id,
    )


def cot_stages_for_display(cot: Any, *, times: dict[tuple[str, Any], float] | None = None) -> list[dict[str, Any]]:
    """The decision's CoT as a list of stages with evidence the template can link.

    ``times`` maps ``(kind, ref)`` to a timestamp, filling in evidence that names a keyframe or
    segment without its time.

    Tolerates malformed model output (non-list, missing keys): what cannot be shown is dropped
    rather than crashing the review screen.
    """
    stages: list[dict[str, Any]] = []
    if not isinstance(cot, list):
        return stages
    for stage in cot:
        if not isinstance(stage, dict):
            continue
        evidence = []
        for ev in stage.get("evidence") or []:
            if not isinstance(ev, dict):
                continue
            t = ev.get("t")
            if not isinstance(t, int | float) and times:
                t = times.get((ev.get("kind", ""), ev.get("ref")))
            evidence.append(
                {
                    "kind": ev.get("kind", ""),
                    "ref": ev.get("ref"),
                    "label": ev.get("label") or ev.get("kind", "evidence"),
                    "t": float(t) if isinstance(t, int | float) else None,
                }
            )
        stages.append(
            {
                "key": stage.get("key", ""),
                "title": stage.get("title") or str(stage.get("key", "")).replace("_", " ").capitalize(),
                "text": stage.get("text", ""),
                "evidence": evidence,
            }
        )
    return stages


def evidence_times(*, keyframes: list[Any], segments: list[Any]) -> dict[tuple[str, Any], float]:
    """Timestamps of a video's keyframes and segments, keyed like CoT evidence ``(kind, ref)``."""
    times: dict[tuple[str, Any], float] = {("keyframe", k.pk): k.timestamp for k in keyframes}
    times.update({("segment", s.pk): s.start for s in segments})
    return times
