"""Bulk seeding of review work for the concurrency test and the benchmarks (bench/ imports it)."""

from __future__ import annotations

from datetime import timedelta

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
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        videos = Video.objects.bulk_create(
            [Video(title=f"{title} {start + i}", status=Video.Status.READY, duration=6.0) for i in range(size)]
        )
        decisions = Decision.objects.bulk_create(
            [
                Decision(
                    video=v,
                    policy_version=policy_version,
                    model_version=model_version,
                    backend=model_version.backend,
                    label="正向",
                    confidence=((start + i) % 100) / 100,
                    cot=[{"key": "final_judgment", "title": "Final judgment", "text": "ok", "evidence": []}],
                )
                for i, v in enumerate(videos)
            ]
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
