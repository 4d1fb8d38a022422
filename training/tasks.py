"""Celery tasks of the training app (routes in workbench/queues.py)."""

from __future__ import annotations

import logging

from celery import shared_task

from training import services
from workbench.queues import LONG_TASK_OPTIONS

logger = logging.getLogger(__name__)


@shared_task(name="training.tasks.run_training_job", **LONG_TASK_OPTIONS)
def run_training_job(job_id: int) -> None:
    """Run one training job. Redelivery-safe: a finished job or one another worker is running is left alone."""
    if services.training_job_claim(job_id=job_id) is None:
        logger.info("training job %s: nothing to do", job_id)
        return
    from training.runners.dpo import run_dpo_job

    run_dpo_job(job_id)


@shared_task(name="training.tasks.reap_stale_jobs")
def reap_stale_jobs() -> list[int]:
    """Fail running jobs whose worker stopped sending heartbeats."""
    return services.training_jobs_reap_stale()
