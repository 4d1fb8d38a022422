from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from moderation.errors import ModerationError, error_text
from moderation.signals import video_decided
from workbench.queues import INFER_ITEM_TASK_OPTIONS, LONG_TASK_OPTIONS
from workbench.storage import STORAGE_RETRIES, StorageUnavailable, storage_retry_delay
from workbench.worker_limits import records_hard_time_limit

logger = logging.getLogger(__name__)


@shared_task(name="moderation.inference.tasks.run_inference", bind=True, **LONG_TASK_OPTIONS)
def run_inference(self: Any, video_id: int) -> int | None:
    """Decide a ready video. Media storage not answering (the keyframes a prompt needs) is transient: the
    video says it waits and the task is retried like the media task (STORAGE_RETRIES, growing pauses)."""
    from moderation.inference.services import (
        decision_record_failure,
        decision_wait_for_storage,
        decisions_create_for_video,
    )

    try:
        pk = decisions_create_for_video(video_id=video_id)[0].pk
    except StorageUnavailable as exc:
        if self.request.retries >= STORAGE_RETRIES:
            decision_record_failure(video_id=video_id, error=f"media storage stayed unreachable: {exc}")
            return None
        decision_wait_for_storage(video_id=video_id, error=str(exc))
        raise self.retry(
            exc=exc, countdown=storage_retry_delay(self.request.retries), max_retries=STORAGE_RETRIES
        ) from exc
    except ModerationError as exc:
        decision_record_failure(video_id=video_id, error=str(exc))
    except Exception as exc:  # a bad item must not kill the worker or stay "processing"
        logger.exception("inference failed for video %s", video_id)
        decision_record_failure(video_id=video_id, error=error_text(exc))
    else:
        # Content tags (a wing above this one) subscribe: candidates on the media worker, then the tags queue.
        video_decided.send(sender=None, video_id=video_id)
        return pk
    return None


@records_hard_time_limit("moderation.inference.tasks.run_inference")
def _inference_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    from moderation.inference.services import decision_record_stopped

    decision_record_stopped(video_id=int(kwargs.get("video_id", args[0] if args else 0)), reason=message)


@shared_task(name="moderation.inference.tasks.decide_missing_policies", **LONG_TASK_OPTIONS)
def decide_missing_policies(video_id: int) -> int:
    """The routing repair's: decide a decided video under the auto-applied policies it lacks a decision under
    (``decisions_create_missing_for_video``; idempotent). A failure leaves the video as it was (it is decided
    already) and is recorded with its reason (``missing_decision_failure_record``): the ops page lists it, and
    after ``MissingDecisionRepair.MAX_ATTEMPTS`` failures the repair stops queueing it until an admin retries."""
    from moderation.inference.services import decisions_create_missing_for_video, missing_decision_failure_record

    try:
        return len(decisions_create_missing_for_video(video_id=video_id))
    except Exception as exc:  # a bad item must not kill the worker
        logger.exception("deciding video %s under the policies it lacks failed", video_id)
        missing_decision_failure_record(video_id=video_id, error=error_text(exc))
        return 0


@shared_task(name="moderation.inference.tasks.purge_kept_verdicts")
def purge_kept_verdicts() -> int:
    """Beat, hourly: delete model answers kept for a retry longer than ``KEPT_VERDICT_RETENTION_DAYS``."""
    from moderation.inference.services import kept_verdicts_purge

    return kept_verdicts_purge()


@shared_task(name="moderation.inference.tasks.purge_impact_previews")
def purge_impact_previews() -> int:
    """Beat, daily: delete kept impact previews of published drafts or older than ``IMPACT_PREVIEW_RETENTION_DAYS``."""
    from moderation.inference.impact import impact_preview_runs_purge

    return impact_preview_runs_purge()


@shared_task(name="moderation.inference.tasks.rerun_decision", **INFER_ITEM_TASK_OPTIONS)
def rerun_decision(rerun_id: int) -> str | None:
    """A re-run a reviewer asked for (DecisionRerun); idempotent: a finished one is left as it is."""
    from moderation.inference.models import DecisionRerun
    from moderation.inference.services import decision_rerun_run

    try:
        return decision_rerun_run(rerun_id=rerun_id).status
    except DecisionRerun.DoesNotExist:  # the decision was deleted meanwhile
        logger.warning("re-run %s no longer exists", rerun_id)
        return None


@records_hard_time_limit("moderation.inference.tasks.rerun_decision")
def _rerun_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    from moderation.inference.services import decision_rerun_stopped

    decision_rerun_stopped(rerun_id=int(kwargs.get("rerun_id", args[0] if args else 0)), reason=message)


@shared_task(name="moderation.inference.tasks.retrain_cascade", **LONG_TASK_OPTIONS)
def retrain_cascade() -> int | None:
    """Beat: queue a retrain of the active stage-1 model once enough new trusted labels arrived
    (``cascade_retrain_if_due``; a training already queued or running is not asked for twice)."""
    from moderation.inference.services import cascade_retrain_if_due

    try:
        training = cascade_retrain_if_due()
    except ModerationError:
        logger.exception("stage-1 retraining could not be queued")
        return None
    return training.pk if training else None


@shared_task(name="moderation.inference.tasks.train_cascade", **LONG_TASK_OPTIONS)
def train_cascade(training_id: int) -> str | None:
    """Run one queued stage-1 training (CascadeTraining); idempotent: a started or finished one is left."""
    from moderation.inference.cascade_models import CascadeTraining
    from moderation.inference.services import cascade_training_run

    try:
        return cascade_training_run(training_id=training_id).status
    except CascadeTraining.DoesNotExist:
        logger.warning("stage-1 training %s no longer exists", training_id)
        return None
