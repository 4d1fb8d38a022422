"""Training artifacts in media storage, so any train or inference node can pick up the work.

With local storage (the default) everything stays in TRAINING_OUTPUT_DIR as before and these functions only
hand back local paths. With object storage (``MEDIA_STORAGE=s3``), under the bucket's ``training/`` prefix:

- a dataset snapshot's JSONL files (and its Hugging Face export) are uploaded when written; the node that
  trains downloads them (``local_file``);
- every checkpoint the trainer saves is uploaded, ``trainer_state.json`` last (it marks the checkpoint
  complete, as on disk); a job retried on a node that lacks it downloads the newest complete one
  (``fetch_latest_checkpoint``) and resumes from there;
- the finished adapter is uploaded and registered as ``stored:training/jobs/<id>/adapter``; inference nodes
  fetch it into their cache once (``workbench.storage.resolve_stored_path``).

Paths in the database are the writing node's; ``artifact_name`` maps one to its object name by its place
under TRAINING_OUTPUT_DIR (``datasets/<id>/…`` or ``jobs/<id>/…``), so nodes may keep that folder anywhere.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from django.conf import settings

from workbench import storage

PREFIX = "training"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


def artifact_name(path: str | Path) -> str:
    """The object name of a file or folder under (some node's) TRAINING_OUTPUT_DIR."""
    path = Path(path)
    try:
        relative = path.resolve().relative_to(Path(settings.TRAINING_OUTPUT_DIR).resolve())
    except ValueError:
        parts = path.parts
        anchors = [i for i, part in enumerate(parts) if part in ("datasets", "jobs")]
        if not anchors:
            raise ValueError(f"{path} is not a training artifact path") from None
        relative = Path(*parts[anchors[-1] :])
    return f"{PREFIX}/{relative.as_posix()}"


def local_path(path: str | Path) -> Path:
    """Where this node keeps the artifact ``path`` names (with local storage: ``path`` itself)."""
    if not storage.is_object_storage():
        return Path(path)
    return Path(settings.TRAINING_OUTPUT_DIR) / artifact_name(path)[len(PREFIX) + 1 :]


def publish_file(path: Path) -> None:
    if storage.is_object_storage():
        storage.store_file(path, artifact_name(path))


def publish_tree(folder: Path) -> None:
    if storage.is_object_storage():
        storage.store_tree(folder, artifact_name(folder))


def available(path: str) -> bool:
    """Is the artifact there, on this node or in the store?"""
    if not path:
        return False
    if Path(path).exists() or local_path(path).exists():
        return True
    return storage.is_object_storage() and storage.exists(artifact_name(path))


def local_file(path: str) -> Path:
    """A local copy of the artifact file ``path``: the file itself if this node has it, else downloaded."""
    if Path(path).is_file():
        return Path(path)
    target = local_path(path)
    if target.is_file() or not storage.is_object_storage():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return storage.local_copy_to(artifact_name(path), target)


def publish_checkpoint(checkpoint: Path) -> None:
    """Upload one saved checkpoint folder, ``trainer_state.json`` last (it marks the checkpoint complete)."""
    if not storage.is_object_storage():
        return
    name = artifact_name(checkpoint)
    files = sorted(p for p in checkpoint.rglob("*") if p.is_file())
    for path in sorted(files, key=lambda p: p.name == "trainer_state.json"):
        storage.store_file(path, f"{name}/{path.relative_to(checkpoint).as_posix()}")


def fetch_latest_checkpoint(output_dir: Path) -> None:
    """Download the newest complete stored checkpoint of the job into ``output_dir/trainer`` unless this
    node already has that one or a newer one."""
    if not storage.is_object_storage():
        return
    trainer = output_dir / "trainer"
    prefix = f"{artifact_name(output_dir)}/trainer/"
    complete = []
    for name in storage.list_names(prefix):
        folder, _, file = name[len(prefix) :].partition("/")
        match = _CHECKPOINT.match(folder)
        if match and file == "trainer_state.json":
            complete.append((int(match.group(1)), folder))
    if not complete:
        return
    step, folder = max(complete)
    have = [
        int(m.group(1))
        for child in (trainer.iterdir() if trainer.is_dir() else [])
        if (m := _CHECKPOINT.match(child.name)) and (child / "trainer_state.json").exists()
    ]
    if have and max(have) >= step:
        return
    partial = trainer / f".{folder}.part"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    storage.fetch_tree(prefix + folder, partial)
    shutil.rmtree(trainer / folder, ignore_errors=True)
    partial.rename(trainer / folder)


def publish_adapter(adapter_dir: Path) -> str:
    """Upload the finished adapter; returns the path to register (``stored:…`` with object storage)."""
    if not storage.is_object_storage():
        return str(adapter_dir)
    name = artifact_name(adapter_dir)
    storage.store_tree(adapter_dir, name)
    return f"{storage.STORED_PREFIX}{name}"
