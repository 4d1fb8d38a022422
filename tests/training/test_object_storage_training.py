"""Training with artifacts in a real S3-compatible store (s3rver): a job whose worker died resumes on
another node from the checkpoint in the store, and an inference node loads the adapter from the store."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from tests.broker import broker_client
from training import services
from training.models import TrainingJob
from training.runners import common
from training.services import preference_dataset_build, training_job_start
from training.tasks import run_training_job
from workbench import storage

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


class WorkerDied(BaseException):
    """Stands in for the node being lost mid-job."""


def _keys(server: Any, bucket: str, prefix: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _move_to_another_node(settings: Any, tmp_path: Path, name: str) -> None:
    settings.TRAINING_OUTPUT_DIR = tmp_path / name / "training"
    settings.MEDIA_ROOT = tmp_path / name / "media"


def test_a_job_resumes_on_another_node_and_its_adapter_serves_from_the_store(
    s3_media: Any, settings: Any, training_dirs: Path, override_review: Any, monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:  # fmt: skip
    bucket = settings.MEDIA_S3_BUCKET
    dataset = preference_dataset_build(created_by=None)  # the web node writes the snapshot
    assert _keys(s3_media, bucket, f"training/datasets/{dataset.pk}/") == [
        f"training/datasets/{dataset.pk}/train.jsonl"
    ]
    job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": 4, "save_steps": 2})

    _move_to_another_node(settings, tmp_path, "train-node-a")
    real_progress = services.training_job_progress

    def dies_at_step_3(**kwargs: Any) -> Any:
        if kwargs["step"] == 3:
            raise WorkerDied
        return real_progress(**kwargs)

    monkeypatch.setattr(services, "training_job_progress", dies_at_step_3)
    monkeypatch.setattr(common, "PROGRESS_FLUSH_SECONDS", 0.0)  # report every step, so it can die at step 3
    with pytest.raises(WorkerDied):
        run_training_job(job.pk)
    stored = _keys(s3_media, bucket, f"training/jobs/{job.pk}/trainer/")
    assert f"training/jobs/{job.pk}/trainer/checkpoint-2/trainer_state.json" in stored

    # Node A is gone; the reaper re-queues the job and node B (empty disk) takes it.
    TrainingJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=30))
    assert services.training_jobs_reap_stale() == [job.pk]
    _move_to_another_node(settings, tmp_path, "train-node-b")
    monkeypatch.setattr(services, "training_job_progress", real_progress)
    run_training_job(job.pk)

    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    assert job.resumed_from_step == 2 and [h["step"] for h in job.history] == [1, 2, 3, 4]
    version = job.model_version
    assert version is not None and version.adapter_path == f"stored:training/jobs/{job.pk}/adapter"
    assert f"training/jobs/{job.pk}/adapter/adapter_config.json" in _keys(s3_media, bucket, "training/jobs/")

    # An inference node with an empty disk fetches the adapter into its cache once and loads it.
    _move_to_another_node(settings, tmp_path, "infer-node")
    from moderation.inference.backends import get_backend

    backend = get_backend("transformers", base_model=version.base_model, adapter_path=version.adapter_path)
    cached = Path(settings.MEDIA_ROOT) / "cache" / f"training/jobs/{job.pk}/adapter"
    assert getattr(backend, "adapter_path", "") == str(cached)
    assert (cached / "adapter_config.json").is_file() and (cached / ".complete").is_file()
    assert storage.resolve_stored_path(version.adapter_path) == str(cached)  # reused, not fetched again


def test_a_store_away_mid_job_requeues_it_with_a_pause_and_it_resumes_when_the_store_is_back(
    s3_media: Any, settings: Any, training_dirs: Path, override_review: Any, tmp_path: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:  # fmt: skip
    import json

    from tests.s3server import point_media_storage_at, start_s3_server
    from workbench.storage import STORAGE_RETRIES

    own = start_s3_server(directory=tmp_path / "s3data")  # a store this test can stop and restart
    try:
        own.create_bucket(settings.MEDIA_S3_BUCKET)
        point_media_storage_at(settings, own.endpoint)
        job = training_job_start(dataset=preference_dataset_build(created_by=None), created_by=None,
                                 params={"max_steps": 2})  # fmt: skip
        own.stop(keep_data=True)  # the training node cannot reach the store

        broker = broker_client()
        broker.delete("train")
        with django_capture_on_commit_callbacks(execute=True):
            run_training_job(job.pk)
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.QUEUED and job.storage_retries == 1 and job.attempts == 0
        assert job.error.startswith("Waiting for the object store (retry 1 in 5 s)")
        assert "re-queued in 5 s" in job.log_tail
        [raw] = broker.lrange("train", 0, -1)  # queued again, to run no sooner than the pause
        message = json.loads(raw)
        assert message["headers"]["task"] == "training.tasks.run_training_job"
        assert message["headers"]["argsrepr"] == f"[{job.pk}]", message["headers"]["argsrepr"]
        assert message["headers"]["eta"] is not None
        broker.delete("train")

        own = start_s3_server(port=own.port, directory=own.directory)  # the store is back
        run_training_job(job.pk)
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.SUCCEEDED, job.error
        assert job.error == "" and job.storage_retries == 1 and job.attempts == 1
        assert _keys(own, settings.MEDIA_S3_BUCKET, f"training/jobs/{job.pk}/adapter/")  # published to the store

        # A store that never comes back: after STORAGE_RETRIES re-queues the job fails with the reason.
        job.status, job.storage_retries, job.finished_at = TrainingJob.Status.RUNNING, STORAGE_RETRIES, None
        job.save()
        assert services.training_job_wait_for_storage(job_id=job.pk, error="unreachable") is False
        job.refresh_from_db()
        assert job.status == TrainingJob.Status.FAILED and "stayed unreachable" in job.error
    finally:
        own.stop()
