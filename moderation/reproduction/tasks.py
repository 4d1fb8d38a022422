"""Reproduction tasks: candidate retrieval for a ready video (media queue) and the teacher's judgement (infer)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from moderation.errors import ModerationError
from workbench.queues import LONG_TASK_OPTIONS
from workbench.storage import STORAGE_RETRIES, StorageUnavailable, storage_retry_delay
from workbench.worker_limits import soft_time_limit_text

logger = logging.getLogger(__name__)


@shared_task(name="moderation.reproduction.tasks.find_candidates", bind=True, **LONG_TASK_OPTIONS)
def find_candidates(self: Any, video_id: int) -> int:
    """Index a ready video's PDQ hashes and record its candidate originals. Idempotent (pairs are upserted).
    Media storage not answering (the student model lives there) is retried like the media task
    (STORAGE_RETRIES, growing pauses); after the last try the video is recorded as not searched, with why."""
    from moderation.reproduction.services import repro_candidates_refresh, repro_retrieval_failure_record

    try:
        return len(repro_candidates_refresh(video_id=int(video_id)))
    except StorageUnavailable as exc:
        if self.request.retries >= STORAGE_RETRIES:
            logger.warning("reproduction retrieval given up for video %s: %s", video_id, exc)
            repro_retrieval_failure_record(
                video_id=int(video_id),
                error=f"Media storage stayed unreachable: {exc}",
                attempts=self.request.retries + 1,
            )
            return 0
        raise self.retry(
            exc=exc, countdown=storage_retry_delay(self.request.retries), max_retries=STORAGE_RETRIES
        ) from exc
    except SoftTimeLimitExceeded:
        # The media queue's soft limit (MEDIA_TASK_SOFT_TIME_LIMIT_S): the ops page lists the video with which limit
        # stopped the search (not a bare SoftTimeLimitExceeded in a worker log), and its Retry searches again.
        logger.warning("reproduction retrieval for video %s stopped at the soft time limit", video_id)
        repro_retrieval_failure_record(
            video_id=int(video_id), error=soft_time_limit_text(self), attempts=self.request.retries + 1
        )
        return 0
    except ModerationError as exc:
        logger.info("reproduction retrieval skipped for video %s: %s", video_id, exc)
        # An operator's retry of a listed video that cannot be searched now (no longer processed): the ops page
        # says why, not "queued" until the retry is taken for lost.
        repro_retrieval_failure_record(
            video_id=int(video_id), error=str(exc), attempts=self.request.retries + 1, listed_only=True
        )
        return 0


@shared_task(name="moderation.reproduction.tasks.judge_pair", **LONG_TASK_OPTIONS)
def judge_pair(candidate_id: int) -> int | None:
    """The teacher VLM's judgement of one pair (kept once per pair and model; a rerun returns it)."""
    from moderation.reproduction.models import ReproCandidate
    from moderation.reproduction.teacher import teacher_judge, teacher_model_serving

    candidate = ReproCandidate.objects.select_related("video", "original").filter(pk=candidate_id).first()
    if candidate is None:
        return None
    try:
        backend, base_model = teacher_model_serving()
    except ModerationError as exc:
        logger.info("pair %s not judged: %s", candidate_id, exc)
        return None
    return teacher_judge(candidate=candidate, backend=backend, base_model=base_model).pk


@shared_task(name="moderation.reproduction.tasks.sweep_distinct_vectors")
def sweep_distinct_vectors() -> int:
    """Beat: one step of the sweep of distinct vectors no video holds any more (idempotent; see the service)."""
    from moderation.reproduction.services import distinct_vectors_sweep_step

    return distinct_vectors_sweep_step()
