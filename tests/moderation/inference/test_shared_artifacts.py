"""Model artifacts that one container writes and another reads go through media storage.

Each "container" here is its own MODELS_DIR (and, with object storage, its own scratch MEDIA_ROOT holding
its cache): the stage-1 model trained on the train worker must reach the infer worker, the student the
web node, and a model a node kept in its MODELS_DIR before the upgrade must not be lost.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage

from moderation.inference.backends.cascade_stage1 import CascadeStage1Backend
from moderation.inference.cascade_models import CascadeModel
from moderation.inference.kuaimod import kuaimod_import
from moderation.inference.services import cascade_train, decision_create_for_video
from moderation.inference.stage1.model import stage1_save
from moderation.reproduction import student as student_mod
from tests.factories import PolicyVersionFactory, VideoFactory
from tests.moderation.inference.kuaimod_samples import write_split

DEAL = "引导私下交易"
CONFIDENT = "加微信私聊，低价出货 私聊加微信"


def _become(settings: Any, tmp_path: Path, node: str, *, own_media: bool) -> None:
    """Switch this process to another container: its own MODELS_DIR (and scratch media folder)."""
    settings.MODELS_DIR = tmp_path / node / "models"
    if own_media:
        settings.MEDIA_ROOT = tmp_path / node / "scratch-media"


def _heads(counter: list[str]) -> Any:
    def count(**kwargs: Any) -> None:
        counter.append(kwargs.get("params", {}).get("Key", ""))

    return count


@pytest.mark.django_db
def test_infer_worker_finds_the_stage1_model_the_train_worker_stored(s3_media, settings, tmp_path) -> None:
    PolicyVersionFactory()
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    _become(settings, tmp_path, "train-worker", own_media=True)
    trained = cascade_train(name="stage1", threshold=0.5)
    assert not (tmp_path / "train-worker" / "models").exists()  # nothing left on the writer's private disk

    _become(settings, tmp_path, "infer-worker", own_media=True)
    heads: list[str] = []
    default_storage.client.meta.events.register("provide-client-params.s3.HeadObject", _heads(heads))  # type: ignore[attr-defined]
    first = decision_create_for_video(video_id=VideoFactory(title=CONFIDENT).pk)
    assert first.cascade_stage == 1 and first.label == DEAL and first.backend == "cascade_stage1"
    cached = tmp_path / "infer-worker" / "scratch-media" / "cache" / "models" / "cascade" / "stage1.joblib"
    assert cached.is_file()
    # Further items: the row did not change, so the store is not asked again within MODEL_ARTIFACT_CHECK_S.
    for _ in range(3):
        assert decision_create_for_video(video_id=VideoFactory(title=CONFIDENT).pk).cascade_stage == 1
    assert heads == ["models/cascade/stage1.joblib"]

    # Retrained on the train worker under the same name: the row's newer trained_at makes the infer
    # worker fetch the new file at once, not after the check interval.
    kuaimod_import(path=write_split(tmp_path / "more.jsonl", start=100, take=slice(0, 4)))  # more labels
    _become(settings, tmp_path, "train-worker", own_media=True)
    assert cascade_train(name="stage1", threshold=0.5).trained_on > trained.trained_on
    _become(settings, tmp_path, "infer-worker", own_media=True)
    before = cached.stat().st_mtime_ns
    backend = CascadeStage1Backend("stage1")
    assert backend.model.trained_at > trained.trained_at
    backend._classifier()
    assert len(heads) == 2 and cached.stat().st_mtime_ns != before


@pytest.mark.django_db
def test_a_model_kept_in_models_dir_before_the_upgrade_is_uploaded_and_shared(settings, tmp_path) -> None:
    """Local storage (one shared media volume); the row still names the old file under MODELS_DIR."""
    settings.MEDIA_ROOT = tmp_path / "media"
    PolicyVersionFactory()
    kuaimod_import(path=write_split(tmp_path / "train.jsonl", start=0, take=slice(0, 12)))
    trained = cascade_train(name="old", threshold=0.5)
    old_file = tmp_path / "old-node" / "models" / "cascade" / "old.joblib"
    old_file.parent.mkdir(parents=True)
    classifier = CascadeStage1Backend("old")._classifier()
    stage1_save(classifier, old_file)
    default_storage.delete("models/cascade/old.joblib")  # as before the upgrade: only the node had it
    CascadeModel.objects.filter(pk=trained.pk).update(artifact_path=str(old_file))
    settings.MODEL_ARTIFACT_CHECK_S = 0

    _become(settings, tmp_path, "old-node", own_media=False)
    first = decision_create_for_video(video_id=VideoFactory(title=CONFIDENT).pk)
    assert first.cascade_stage == 1 and first.label == DEAL
    assert default_storage.exists("models/cascade/old.joblib")  # uploaded once, for every node

    old_file.unlink()
    _become(settings, tmp_path, "new-node", own_media=False)
    assert decision_create_for_video(video_id=VideoFactory(title=CONFIDENT).pk).cascade_stage == 1


@pytest.mark.django_db
def test_a_stage1_row_whose_file_is_nowhere_says_to_train_again(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MODELS_DIR = tmp_path / "models"
    CascadeModel.objects.create(
        name="lost", artifact_path="models/cascade/lost.joblib", labels=["a", "b"], escalate_threshold=0.5
    )
    with pytest.raises(Exception, match="missing from storage; train it again"):
        CascadeStage1Backend("lost")._classifier()


@pytest.mark.django_db
def test_the_student_trained_on_a_worker_scores_on_another_node(s3_media, settings, tmp_path) -> None:
    examples = [
        ({"coverage_copy": 0.9, "frame_sim_max": 0.99}, "reproduction"),
        ({"coverage_copy": 0.5, "frame_sim_max": 0.7}, "derivative"),
        ({"coverage_copy": 0.0, "frame_sim_max": 0.1}, "unrelated"),
    ] * 3
    settings.MODEL_ARTIFACT_CHECK_S = 0
    _become(settings, tmp_path, "web", own_media=True)
    assert student_mod.student_load() is None  # none trained yet

    _become(settings, tmp_path, "worker", own_media=True)
    published = student_mod.student_fit(examples, source="human")
    student_mod.student_publish(published)

    _become(settings, tmp_path, "web", own_media=True)
    loaded = student_mod.student_load()
    assert loaded is not None and loaded.name == published.name
    assert not (tmp_path / "worker" / "models").exists() and not (tmp_path / "web" / "models").exists()
