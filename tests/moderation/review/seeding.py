"""Bulk seeding of review work for the concurrency test and the benchmarks (bench/ imports it)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from moderation.models import Decision, ModelVersion, PolicyVersion, ReviewQueue, ReviewTask, Video


def seed_pending_tasks(
    *, n: int, queue: ReviewQueue, policy_version: PolicyVersion, batch_size: int = 5000, title: str = "Bulk item"
) -> None:
    """``n`` videos, each with a decision and one pending task in ``queue`` (bulk inserts)."""
    model_version, _ = ModelVersion.objects.get_or_create(
        name="evidence-baseline-v1", defaults={"backend": ModelVersion.Backend.EVIDENCE_BASELINE}
    )
    now = timezone.now()
    cot = [{"key": "final_judgment", "title": "Final judgment", "text": "ok", "evidence": []}]
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        decisions = decided_videos_create(
            titles=[f"{title} {start + i}" for i in range(size)],
            policy_version=policy_version,
            model_version=model_version,
            cot=cot,
            confidences=[((start + i) % 100) / 100 for i in range(size)],
        )
        ReviewTask.objects.bulk_create(
            [
                ReviewTask(
                    decision=d,
                    queue=queue,
                    priority=(start + i) % 7,
                    deadline=now + timedelta(seconds=queue.sla_seconds + (start + i) % 3600),
                )
                for i, d in enumerate(decisions)
            ]
        )


def decided_videos_create(
    *,
    titles: list[str],
    policy_version: PolicyVersion,
    model_version: ModelVersion,
    cot: list[dict[str, Any]],
    label: str = "正向",
    confidences: list[float] | None = None,
) -> list[Decision]:
    """One ready video per title, each with one decision of ``label`` (two bulk inserts); the decisions, in order."""
    videos = Video.objects.bulk_create([Video(title=t, status=Video.Status.READY, duration=6.0) for t in titles])
    extra = [{"confidence": c} for c in confidences] if confidences is not None else [{} for _ in videos]
    return Decision.objects.bulk_create(
        [
            Decision(
                video=v,
                policy_version=policy_version,
                model_version=model_version,
                backend=model_version.backend,
                label=label,
                cot=cot,
                **kw,
            )
            for v, kw in zip(videos, extra, strict=True)
        ]
    )
