"""Celery tasks of the training app (routes in workbench/queues.py)."""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task

from training import services
from workbench.queues import INFER_ITEM_TASK_OPTIONS, LONG_TASK_OPTIONS
from workbench.worker_limits import records_hard_time_limit

logger = logging.getLogger(__name__)


@shared_task(name="training.tasks.run_training_job", **LONG_TASK_OPTIONS)
def run_training_job(job_id: int) -> None:
    """Run one training job. Redelivery-safe: a finished job or one another worker is running is left alone;
    a job whose worker died resumes from its last checkpoint."""
    if services.training_job_claim(job_id=job_id) is None:
        logger.info("training job %s: nothing to do", job_id)
        return
    from training.runners.common import run_job_launched

    run_job_launched(job_id)


@records_hard_time_limit("training.tasks.run_training_job")
def _training_job_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    """A job its worker was ended for at TRAIN_TASK_TIME_LIMIT_S ends failed (not re-queued by the reaper: it would
    run into the same limit)."""
    services.training_job_fail(job_id=int(kwargs.get("job_id", args[0] if args else 0)), error=message)


@shared_task(name="training.tasks.reap_stale_jobs")
def reap_stale_jobs() -> list[int]:
    """Re-queue (or, out of attempts, fail) running jobs whose worker stopped sending heartbeats."""
    return services.training_jobs_reap_stale()


@shared_task(name="training.tasks.reap_stale_evaluations")
def reap_stale_evaluations() -> list[int]:
    """Fail running evaluations whose worker stopped sending heartbeats (killed, out of memory, restarted)."""
    return services.evaluation_runs_reap_stale()


@records_hard_time_limit("training.tasks.run_evaluation")
def _evaluation_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    from training.evaluation import evaluation_fail

    evaluation_fail(run_id=int(kwargs.get("run_id", args[0] if args else 0)), error=message)


@shared_task(name="training.tasks.export_dataset")
def export_dataset(dataset_id: int) -> str:
    """Write a snapshot's Hugging Face ``datasets`` folder (idempotent)."""
    return services.dataset_export_hf(dataset_id=dataset_id)


@shared_task(name="training.tasks.evaluate_retrain_rules")
def evaluate_retrain_rules() -> list[int]:
    """Beat: start a job for every enabled "retrain when" rule whose condition holds (once per trigger)."""
    from training.retrain import retrain_rules_evaluate

    return retrain_rules_evaluate()


@shared_task(name="training.tasks.run_evaluation", **LONG_TASK_OPTIONS)
def run_evaluation(run_id: int) -> None:
    """Run a model version over an evaluation set; a finished run is left alone."""
    from training.evaluation import evaluation_execute

    evaluation_execute(run_id=run_id)


# One item through the candidates: the infer item's limits (14/15 minutes), not the infer queue's three hours, so a
# try stuck in native code is recorded and tried again within minutes (training.release.SHADOW_TRY_STALLED_AFTER).
@shared_task(name="training.tasks.run_shadow_decision", **INFER_ITEM_TASK_OPTIONS)
def run_shadow_decision(decision_id: int) -> int:
    """After a live decision: let every active shadow candidate decide the same item (idempotent)."""
    from training.release import shadow_decide

    return len(shadow_decide(decision_id=decision_id))


@records_hard_time_limit("training.tasks.run_shadow_decision")
def _shadow_decision_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    """The item's first tries its worker was ended at the hard limit for: failed tries, tried again on beat."""
    from training.models import ShadowDecision
    from training.release import shadow_tries_stopped

    decision_id = int(kwargs.get("decision_id", args[0] if args else 0))
    shadow_tries_stopped(running=ShadowDecision.objects.filter(decision_id=decision_id, attempts=1), reason=message)


@shared_task(name="training.tasks.retry_failed_shadow_decisions")
def retry_failed_shadow_decisions() -> list[int]:
    """Beat: queue the next try of each failed shadow decision that is due (SHADOW_MAX_ATTEMPTS in all)."""
    from training.release import shadow_decisions_retry_due

    return shadow_decisions_retry_due()


@shared_task(name="training.tasks.retry_shadow_decision", **INFER_ITEM_TASK_OPTIONS)
def retry_shadow_decision(shadow_id: int, attempt: int) -> str:
    """One more try of a failed shadow decision; a redelivered message for a try already made is a no-op."""
    from training.release import shadow_decision_retry

    return shadow_decision_retry(shadow_id=int(shadow_id), attempt=int(attempt))


@records_hard_time_limit("training.tasks.retry_shadow_decision")
def _shadow_retry_stopped(args: tuple[Any, ...], kwargs: dict[str, Any], message: str) -> None:
    from training.models import ShadowDecision
    from training.release import shadow_tries_stopped

    shadow_id = int(kwargs.get("shadow_id", args[0] if args else 0))
    attempt = int(kwargs.get("attempt", args[1] if len(args) > 1 else 0))
    shadow_tries_stopped(running=ShadowDecision.objects.filter(pk=shadow_id, attempts=attempt), reason=message)
