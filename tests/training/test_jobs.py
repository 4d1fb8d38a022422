from __future__ import annotations

import time
from pathlib import Path

import pytest

from moderation.models import ModelVersion
from training.models import TrainingJob
from training.services import preference_dataset_build, training_job_cancel, training_job_start

TERMINAL = {TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED}


def _wait(job: TrainingJob, until, timeout: float = 120.0) -> TrainingJob:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if until(job):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job.pk} still {job.status} at step {job.step}: {job.log_tail}")


@pytest.fixture
def dataset(training_dirs, override_review, cot_correction):  # type: ignore[no-untyped-def]
    return preference_dataset_build(created_by=None)


@pytest.mark.integration
def test_dpo_job_trains_saves_an_adapter_and_registers_a_model_version(celery_worker, dataset, make_user):
    job = training_job_start(dataset=dataset, created_by=make_user("admin"), params={"max_steps": 3})

    job = _wait(job, lambda j: j.status in TERMINAL)

    assert job.status == TrainingJob.Status.SUCCEEDED, job.error
    assert job.step == job.total_steps == 3
    assert [h["step"] for h in job.history] == [1, 2, 3]
    assert all(isinstance(h["loss"], float) for h in job.history)
    assert job.heartbeat_at is not None and job.finished_at is not None
    adapter = Path(job.output_dir) / "adapter"
    assert (adapter / "adapter_config.json").exists()
    assert (adapter / "adapter_model.safetensors").exists()
    version = ModelVersion.objects.get(source_job_id=job.pk)
    assert job.model_version == version
    assert version.backend == ModelVersion.Backend.TRANSFORMERS
    assert version.adapter_path == str(adapter)
    assert Path(version.base_model, "config.json").exists()  # the tiny local Llama it was trained on
    assert version.metrics["final_loss"] == job.history[-1]["loss"]


@pytest.mark.integration
def test_a_broken_base_model_ends_failed_with_a_readable_error(celery_worker, dataset, tmp_path):
    broken = tmp_path / "not-a-model"
    broken.mkdir()
    job = training_job_start(dataset=dataset, created_by=None, base_model=str(broken))

    job = _wait(job, lambda j: j.status in TERMINAL)

    assert job.status == TrainingJob.Status.FAILED
    assert "has no config.json" in job.error and str(broken) in job.error
    assert not ModelVersion.objects.filter(source_job_id=job.pk).exists()


def test_a_job_refused_by_our_own_check_shows_the_reason_without_a_class_name(dataset, tmp_path):
    """A job failed for a reason we wrote to be read (here: a base model folder with no config.json) was
    recorded as "TrainingError: …"; it reads as written now, as a failed evaluation does."""
    from training.runners.common import run_job
    from training.services import training_job_claim

    broken = tmp_path / "not-a-model"
    broken.mkdir()
    job = training_job_start(dataset=dataset, created_by=None, base_model=str(broken))
    training_job_claim(job_id=job.pk)

    run_job(job.pk)

    job.refresh_from_db()
    assert job.status == TrainingJob.Status.FAILED
    assert job.error == f"Base model folder {broken} has no config.json (not a saved transformers model).", job.error


@pytest.mark.integration
def test_prompts_longer_than_max_length_fail_with_advice(celery_worker, dataset):
    job = training_job_start(dataset=dataset, created_by=None, params={"max_length": 16})

    job = _wait(job, lambda j: j.status in TERMINAL)

    assert job.status == TrainingJob.Status.FAILED
    assert "Every prompt is at least max_length=16 tokens long" in job.error and "Raise max_length" in job.error


@pytest.mark.integration
def test_cancelling_a_running_job_stops_it(celery_worker, dataset, monkeypatch):
    from training.runners import common

    # The job reports (and reads the cancel) every 5 s; every 0.2 s here, so the first step shows and the
    # cancel is seen about 10 s sooner. The cancel check itself is the one a 5 s job runs.
    monkeypatch.setattr(common, "PROGRESS_FLUSH_SECONDS", 0.2)
    job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 5000})
    job = _wait(job, lambda j: j.step >= 1 or j.status in TERMINAL)
    assert job.status == TrainingJob.Status.RUNNING, job.error

    training_job_cancel(job=job, by=None)

    job = _wait(job, lambda j: j.status in TERMINAL)
    assert job.status == TrainingJob.Status.CANCELLED
    assert 1 <= job.step < 5000
    assert not ModelVersion.objects.filter(source_job_id=job.pk).exists()
