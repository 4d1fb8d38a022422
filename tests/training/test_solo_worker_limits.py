"""The solo GPU workers (infer, train) enforce time and memory limits themselves (workbench/worker_limits.py): Celery
enforces them only in prefork, and these workers stay solo (a prefork child may not start processes of its own).
Before, a training job or evaluation stuck past any limit held its worker for ever, and a worker killed from outside
left its run "running" until a reaper noticed. Real `celery worker --pool solo` processes on the test database and
Redis, running a real training job (the tiny local model: importing torch and building it take longer than the
seconds-long limits set here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.workers import solo_worker, stop_worker, wait_for
from training.models import TrainingJob
from training.services import preference_dataset_build, training_job_start
from workbench.celery import app
from workbench.queues import TaskQueue
from workbench.worker_limits import HARD_LIMIT_EXIT_STATUS

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.integration]


def _start_train_worker(log: Path, **env: str) -> subprocess.Popen[bytes]:
    with app.connection_for_write() as conn:  # messages earlier tests left on the queue are not this test's
        conn.default_channel.queue_purge(TaskQueue.TRAIN.value)
    return solo_worker(TaskQueue.TRAIN.value, log, TRAINING_OUTPUT_DIR=str(settings.TRAINING_OUTPUT_DIR), **env)


@pytest.fixture
def dataset(training_dirs, override_review, cot_correction):  # type: ignore[no-untyped-def]
    return preference_dataset_build(created_by=None)


def _job_status(job: TrainingJob) -> str:
    job.refresh_from_db()
    return str(job.status)


def test_a_job_past_the_hard_time_limit_ends_its_solo_worker_and_is_recorded_failed(dataset, tmp_path) -> None:
    log = tmp_path / "worker.log"
    worker = _start_train_worker(log, TRAIN_TASK_SOFT_TIME_LIMIT_S="0", TRAIN_TASK_TIME_LIMIT_S="3")
    try:
        job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 50})  # queued at once
        wait_for(lambda: worker.poll() is not None, 120, "the worker to end at the hard limit", log)
        assert worker.returncode == HARD_LIMIT_EXIT_STATUS, log.read_text()[-3000:]
    finally:
        stop_worker(worker)

    job.refresh_from_db()
    # Failed with the reason at once (not "running" until the reaper's 10 minutes), and not re-queued by it.
    assert job.status == TrainingJob.Status.FAILED, (job.status, job.error, log.read_text()[-3000:])
    assert "Stopped after 3 s, the train workers' time limit (TRAIN_TASK_TIME_LIMIT_S)" in job.error, job.error
    assert "worker was restarted" in job.error and job.finished_at is not None


def test_a_job_past_the_soft_time_limit_fails_with_the_reason_and_the_worker_starts_afresh(dataset, tmp_path) -> None:
    log = tmp_path / "worker.log"
    worker = _start_train_worker(log, TRAIN_TASK_SOFT_TIME_LIMIT_S="3", TRAIN_TASK_TIME_LIMIT_S="120")
    try:
        job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 50})
        wait_for(lambda: _job_status(job) in {"failed", "succeeded"}, 120, "the job to end", log)
        # The task recorded its failure, then the worker shut down warm (not at the hard limit) for a fresh process:
        # a model interrupted mid-call is not reused.
        wait_for(lambda: worker.poll() is not None, 60, "the warm shutdown", log)
        assert worker.returncode == 0, log.read_text()[-3000:]
    finally:
        stop_worker(worker)

    assert job.status == TrainingJob.Status.FAILED, (job.status, job.error)
    assert job.error.startswith("Stopped after 3 s, the train workers' soft time limit (TRAIN_TASK_SOFT_TIME_LIMIT_S)")
    assert "stopped at its soft time limit: shutting down for a fresh process" in log.read_text()


def test_a_solo_worker_a_task_left_above_its_memory_limit_shuts_down_after_the_task(tmp_path) -> None:
    log = tmp_path / "worker.log"
    worker = _start_train_worker(log, SOLO_WORKER_MAX_MEMORY_MB="1")  # any Python process is larger
    try:
        app.send_task("training.tasks.run_training_job", args=[0], queue=TaskQueue.TRAIN.value)  # no such job
        wait_for(lambda: worker.poll() is not None, 120, "the worker to shut down", log)
    finally:
        stop_worker(worker)
    assert worker.returncode == 0  # a warm shutdown: the restart policy starts a fresh process
    text = log.read_text()
    assert "nothing to do" in text and "above SOLO_WORKER_MAX_MEMORY_MB (1)" in text, text[-3000:]
