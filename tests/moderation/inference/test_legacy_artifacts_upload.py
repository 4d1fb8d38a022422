"""At worker start the models a node kept in its MODELS_DIR before the upgrade are uploaded to media storage,
once, without replacing what the store holds, and a store that does not answer only logs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from celery import signals
from django.core.files.storage import default_storage

from moderation.artifacts import legacy_artifacts_upload
from moderation.inference.cascade_models import CascadeModel
from tests.s3server import free_port, point_media_storage_at

pytestmark = pytest.mark.django_db


def _legacy_files(models_dir: Path) -> None:
    (models_dir / "cascade").mkdir(parents=True)
    (models_dir / "repro").mkdir(parents=True)
    (models_dir / "cascade" / "stage1.joblib").write_bytes(b"old stage1")
    (models_dir / "cascade" / "learning_curve.json").write_text("{}")
    (models_dir / "repro" / "student.joblib").write_bytes(b"old student")


def test_legacy_artifacts_are_uploaded_once_and_never_replace_stored_ones(
    s3_media: Any, settings: Any, tmp_path: Path
) -> None:
    settings.MODELS_DIR = tmp_path / "worker" / "models"
    _legacy_files(settings.MODELS_DIR)
    # A row from before sharing names its file by absolute path, elsewhere than MODELS_DIR/cascade.
    elsewhere = tmp_path / "old-disk" / "strict.joblib"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"old strict")
    CascadeModel.objects.create(name="strict", artifact_path=str(elsewhere), escalate_threshold=0.5)
    # The store already holds a newer student trained elsewhere.
    default_storage.save("models/repro/student.joblib", _content(b"new student"))

    first = legacy_artifacts_upload()
    assert sorted(first["uploaded"]) == [
        "models/cascade/learning_curve.json", "models/cascade/stage1.joblib", "models/cascade/strict.joblib",
    ]  # fmt: skip
    assert first["present"] == ["models/repro/student.joblib"] and first["failed"] == []
    assert default_storage.open("models/cascade/stage1.joblib").read() == b"old stage1"
    assert default_storage.open("models/cascade/strict.joblib").read() == b"old strict"
    assert default_storage.open("models/repro/student.joblib").read() == b"new student"  # not replaced

    again = legacy_artifacts_upload()  # the next start: nothing to do
    assert again["uploaded"] == [] and len(again["present"]) == 4


def test_an_unreachable_store_is_logged_and_start_goes_on(
    s3_media: Any, settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.MODELS_DIR = tmp_path / "worker" / "models"
    _legacy_files(settings.MODELS_DIR)
    point_media_storage_at(settings, f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="moderation.artifacts"):
        result = legacy_artifacts_upload()
    assert result["uploaded"] == [] and len(result["failed"]) == 3
    assert "not uploaded" in caplog.text and "unreachable" in caplog.text


def test_the_worker_ready_signal_runs_the_upload(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODELS_DIR = tmp_path / "worker" / "models"
    _legacy_files(settings.MODELS_DIR)
    import threading

    before = set(threading.enumerate())
    signals.worker_ready.send(sender=None)
    for thread in set(threading.enumerate()) - before:
        if thread.name == "workbench-legacy-artifacts":
            thread.join(timeout=30)
    assert (tmp_path / "media" / "models" / "repro" / "student.joblib").read_bytes() == b"old student"


def _content(data: bytes) -> Any:
    from django.core.files.base import ContentFile

    return ContentFile(data)
