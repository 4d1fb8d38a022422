"""Job state changes that need no worker: claiming, redelivery, stale heartbeats, validation."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from training.errors import TrainingError
from training.models import TrainingJob
from training.services import training_job_claim, training_job_start
from training.tasks import reap_stale_jobs, run_training_job

pytestmark = pytest.mark.django_db


def _job(dataset, **fields):  # type: ignore[no-untyped-def]
    return TrainingJob.objects.create(dataset=dataset, params={"max_steps": 4}, total_steps=4, **fields)


@pytest.mark.parametrize("status", ["succeeded", "failed", "cancelled"])
def test_a_redelivered_task_for_a_finished_job_does_nothing(dataset, status):
    job = _job(dataset, status=status, step=4, history=[{"step": 4, "loss": 0.1}])

    run_training_job(job.pk)  # runs the task body in this process, as a redelivery would

    job.refresh_from_db()
    assert job.status == status and job.step == 4 and job.history == [{"step": 4, "loss": 0.1}]


def test_a_running_job_with_a_fresh_heartbeat_is_left_to_its_worker(dataset):
    job = _job(dataset, status="running", step=2, heartbeat_at=timezone.now())

    assert training_job_claim(job_id=job.pk) is None
    job.refresh_from_db()
    assert job.status == "running" and job.step == 2


def test_a_running_job_with_a_stale_heartbeat_is_taken_over_keeping_its_progress(dataset):
    stale = timezone.now() - timedelta(minutes=30)
    job = _job(dataset, status="running", step=3, history=[{"step": 1, "loss": 0.7}], heartbeat_at=stale, attempts=1)

    claimed = training_job_claim(job_id=job.pk)

    assert claimed is not None
    job.refresh_from_db()
    # The runner decides from the checkpoints on disk where to resume; the claim keeps the record.
    assert job.status == "running" and job.step == 3 and job.history == [{"step": 1, "loss": 0.7}]
    assert job.heartbeat_at > stale and job.attempts == 2
    assert "taking over from the last checkpoint" in job.log_tail


def test_reaper_requeues_quiet_jobs_with_attempts_left_and_fails_the_rest(dataset):
    quiet = _job(dataset, status="running", heartbeat_at=timezone.now() - timedelta(minutes=11), attempts=1)
    spent = _job(dataset, status="running", heartbeat_at=timezone.now() - timedelta(minutes=11), attempts=3)
    alive = _job(dataset, status="running", heartbeat_at=timezone.now() - timedelta(minutes=1), attempts=1)

    assert sorted(reap_stale_jobs()) == sorted([quiet.pk, spent.pk])

    for job in (quiet, spent, alive):
        job.refresh_from_db()
    assert quiet.status == "queued" and "re-queued to resume" in quiet.log_tail
    assert spent.status == "failed" and "stopped responding" in spent.error and "after 3 attempt(s)" in spent.error
    assert alive.status == "running"


def test_start_rejects_bad_parameters_with_a_readable_error(dataset):
    with pytest.raises(TrainingError, match="max_steps must be between 1 and 100000"):
        training_job_start(dataset=dataset, created_by=None, params={"max_steps": 0})
    with pytest.raises(TrainingError, match="Unknown training parameter"):
        training_job_start(dataset=dataset, created_by=None, params={"epochs": 3})
    with pytest.raises(TrainingError, match="Unknown training parameter.*num_generations"):
        training_job_start(dataset=dataset, created_by=None, kind="dpo", params={"num_generations": 4})
    with pytest.raises(TrainingError, match="lora_target_modules must name"):
        training_job_start(dataset=dataset, created_by=None, params={"lora_target_modules": "q_proj; rm -rf"})
    with pytest.raises(TrainingError, match="must be a multiple of num_generations"):
        training_job_start(dataset=dataset, created_by=None, kind="grpo", params={"batch_size": 3})
    with pytest.raises(TrainingError, match="A SFT job needs a dataset of SFT chat records"):
        training_job_start(dataset=dataset, created_by=None, kind="sft")
    assert not TrainingJob.objects.exists()


def test_start_uses_the_configured_base_model_and_lora_defaults(dataset, settings):
    settings.TRAINING_BASE_MODEL = "/models/some-vlm"
    job = training_job_start(dataset=dataset, created_by=None)
    assert job.base_model == "/models/some-vlm"
    assert job.params["lora_r"] == 8 and job.params["lora_alpha"] == 16
    assert job.params["lora_target_modules"] == ["q_proj", "v_proj"] and job.total_steps == 4


def test_a_new_job_never_inherits_checkpoints_left_under_its_id(dataset, settings, tmp_path):
    """Ids start again after a database reset while var/ keeps the old jobs' folders."""
    from training.services import job_output_dir

    settings.TRAINING_OUTPUT_DIR = str(tmp_path)
    first = training_job_start(dataset=dataset, created_by=None)
    stale = job_output_dir(first.pk + 1) / "trainer" / "checkpoint-2"
    stale.mkdir(parents=True)

    job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 8})  # the same settings: no job

    assert job.pk == first.pk + 1 and job.output_dir == str(job_output_dir(job.pk))
    assert not stale.exists()


def test_the_web_side_of_training_does_not_import_ml_libraries():
    code = (
        "import django, sys; django.setup();"
        "import training.views, training.tasks, training.services, training.runners.dpo, training.runners.sft,"
        "training.runners.grpo, training.runners.common, training.rewards, training.evaluation, training.release,"
        "training.retrain, training.data, training.tiny_model;"
        "from django.urls import reverse; reverse('training:job_list');"
        "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'peft', 'datasets') if m in sys.modules);"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DJANGO_SETTINGS_MODULE": "workbench.settings_test"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
