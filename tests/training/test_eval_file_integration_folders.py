"""The evaluation file a user names (KuaiMod-format JSONL) is kept out of every integration's import folder
(``integration-<id>/``) unless the user manages integrations, as ``video_submit`` keeps uploads out: the evaluation
path checked only MEDIA_IMPORT_ROOTS, so anyone who may start an evaluation could read a platform's files through it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from moderation.inference.services import model_version_serving
from training.errors import TrainingError
from training.evaluation import evaluation_start
from training.models import EvaluationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def files(tmp_path, settings):  # type: ignore[no-untyped-def]
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    platform, own = tmp_path / "integration-7", tmp_path / "evals"
    platform.mkdir()
    own.mkdir()
    (platform / "held_out.jsonl").write_text("{}\n")
    (own / "held_out.jsonl").write_text("{}\n")
    (own / "link.jsonl").symlink_to(platform / "held_out.jsonl")
    return platform / "held_out.jsonl", own / "held_out.jsonl", own / "link.jsonl"


def _trainer(make_user):  # type: ignore[no-untyped-def]
    """Manages training, not integrations."""
    user = make_user(None)
    user.user_permissions.add(Permission.objects.get(codename="manage_training"))
    return type(user).objects.get(pk=user.pk)


def test_a_trainer_who_does_not_manage_integrations_is_kept_out_of_their_folders(files, make_user, policy_version):
    platform, own, link = files
    trainer = _trainer(make_user)
    for path in (platform, link):  # as written, or where a symlink leads
        with pytest.raises(TrainingError, match="in a platform integration's import folder"):
            evaluation_start(
                model_version=model_version_serving(), created_by=trainer, eval_set="kuaimod_file", file_path=str(path)
            )
    assert not EvaluationRun.objects.exists()
    run = evaluation_start(
        model_version=model_version_serving(), created_by=trainer, eval_set="kuaimod_file", file_path=str(own)
    )
    assert run.file_path == str(own.resolve())


def test_who_manages_integrations_may_name_a_file_in_their_folders(files, make_user, policy_version):
    platform, _own, _link = files
    run = evaluation_start(
        model_version=model_version_serving(),
        created_by=make_user("admin"),
        eval_set="kuaimod_file",
        file_path=str(platform),
    )
    assert run.file_path == str(platform.resolve())
