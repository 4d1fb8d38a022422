"""Model artifacts a node kept in its private MODELS_DIR before they were shared through media storage.

``artifact_local`` uploads such a file when the process holding it reads it; a worker that never reads it (an
infer worker that never served that stage-1 model, a train worker holding the only student) would keep it to
itself. ``legacy_artifacts_upload`` runs once at worker start (``worker_ready``, see ``connect_worker_start``)
and uploads every legacy artifact found here that the store lacks."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)


def legacy_artifacts() -> dict[str, Path]:
    """Stored name -> this node's file, for each legacy artifact present on this node: the stage-1 models (the
    path each model's row recorded before sharing, and any ``cascade/*.joblib`` under MODELS_DIR), the
    learning curve and the reproduction student."""
    from moderation.inference.cascade_models import CascadeModel
    from moderation.inference.selectors import cascade_learning_curve_name
    from moderation.inference.stage1.model import stage1_artifact_name, stage1_legacy_path
    from moderation.reproduction.student import student_artifact_name, student_path

    found: dict[str, Path] = {}
    cascade = Path(settings.MODELS_DIR) / "cascade"
    if cascade.is_dir():
        for path in sorted(cascade.glob("*.joblib")):
            found[stage1_artifact_name(path.stem)] = path
    for name, recorded in CascadeModel.objects.values_list("name", "artifact_path"):
        path = Path(recorded)
        legacy = path if path.is_absolute() else stage1_legacy_path(name)
        if legacy.is_file():
            found[stage1_artifact_name(name)] = legacy
    for name, path in (
        (cascade_learning_curve_name(), cascade / "learning_curve.json"),
        (student_artifact_name(), student_path()),
    ):
        if path.is_file():
            found[name] = path
    return found


def legacy_artifacts_upload() -> dict[str, list[str]]:
    """Upload each legacy artifact of this node that the store lacks; idempotent (one the store holds is left
    alone). Never raises for the store: a name it could not check or upload is logged and listed under
    ``failed`` (the next start, or the process's first read of it, tries again). Returns the stored names,
    as ``uploaded``, ``present`` (already in the store) and ``failed``."""
    from workbench.storage import StorageError, artifact_upload_if_absent

    result: dict[str, list[str]] = {"uploaded": [], "present": [], "failed": []}
    try:
        found = legacy_artifacts()
    except Exception:  # the database away at start: the next start tries again
        logger.warning("legacy model artifacts not checked: could not list them", exc_info=True)
        return result
    for name, path in found.items():
        try:
            uploaded = artifact_upload_if_absent(path, name)
        except (StorageError, OSError) as exc:
            logger.warning("legacy model artifact %s not uploaded from %s: %s", name, path, exc)
            result["failed"].append(name)
            continue
        result["uploaded" if uploaded else "present"].append(name)
        if uploaded:
            logger.info("legacy model artifact %s uploaded from %s", name, path)
    if found:
        logger.info(
            "legacy model artifacts: %d uploaded, %d already stored, %d failed",
            len(result["uploaded"]), len(result["present"]), len(result["failed"]),
        )  # fmt: skip
    return result


def connect_worker_start() -> None:
    """At worker start, upload this node's legacy artifacts in a background thread: a slow or absent store
    never holds up the worker taking tasks."""
    from celery import signals

    @signals.worker_ready.connect(weak=False)
    def _upload_legacy(**_: Any) -> None:
        def run() -> None:
            from django.db import connection

            try:
                legacy_artifacts_upload()
            finally:
                connection.close()

        threading.Thread(target=run, name="workbench-legacy-artifacts", daemon=True).start()
