"""TAG_VLM_MODEL naming a model version that is not there (a typo, or one not registered yet) or one that writes no
free text asked no VLM without a word: the videos got no VLM tags, the curation page said "No VLM serves moderation
now" while the operator had named one. The registry is in the database, so it is not checked at every start (a process
starts before the database is migrated, and a model registered after the deploy is named rightly all along): the
curation page says what is wrong and how to set it, a skipped VLM-tags run records the same reason, and
`manage.py check --database default` and `migrate` warn (moderation.W001), never failing on a database not migrated
yet."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.db import connection, transaction

from moderation.inference.models import ModelVersion
from moderation.tagging import selectors, services
from moderation.tagging.checks import tag_vlm_model_check
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db


def _warnings(databases: list[str] | None = None) -> list[tuple[str, str]]:
    return [(m.id or "", m.msg) for m in run_checks(databases=databases) if m.id == "moderation.W001"]


def test_a_name_no_model_version_has_is_said_where_the_operator_looks(
    settings: Any, client_as: Any, policy_version: Any
) -> None:
    ModelVersion.objects.create(name="qwen-vl-7b", backend="transformers", base_model="/models/qwen")
    ModelVersion.objects.create(name="stage1", backend="cascade_stage1", base_model="s1")
    settings.TAG_VLM_MODEL = "qwen-vl-7"
    said = (
        "TAG_VLM_MODEL='qwen-vl-7' names no model version, so no VLM proposes tags: set it to one of the VLM model "
        "versions (qwen-vl-7b), empty for the model serving the default policy, or off."
    )
    assert selectors.tag_vlm_model() is None
    assert selectors.tag_vlm_model_problem() == said
    # The curation page, where VLM proposals are looked for, says it instead of "No VLM serves moderation now".
    body = client_as("policy_editor").get("/tags/curation/").content.decode()
    assert 'id="vlm-model-problem"' in body and "TAG_VLM_MODEL=&#x27;qwen-vl-7&#x27; names no model version" in body
    assert "No VLM serves moderation now" not in body
    # A VLM-tags run (queued before, or asked again) records why it asked nothing.
    video = DecisionFactory(policy_version=policy_version).video
    assert services.tag_vlm_suggest(video_id=video.pk).skipped == said
    # `manage.py check --database default` and `migrate` warn; a plain start does not look at the database.
    assert _warnings(["default"]) == [("moderation.W001", said)]
    assert _warnings() == []
    call_command("check", "--database", "default", verbosity=0)  # a warning: it does not stop the command

    settings.TAG_VLM_MODEL = "qwen-vl-7b"
    assert selectors.tag_vlm_model().name == "qwen-vl-7b"
    assert selectors.tag_vlm_model_problem() == ""
    assert _warnings(["default"]) == []
    body = client_as("policy_editor").get("/tags/curation/").content.decode()
    assert "Proposals come from <strong>qwen-vl-7b</strong>" in body and "vlm-model-problem" not in body


def test_a_model_that_writes_no_free_text_and_the_settings_that_name_none(settings: Any) -> None:
    ModelVersion.objects.create(name="stage1", backend="cascade_stage1", base_model="s1")
    ModelVersion.objects.create(name="vlm-no-weights", backend="vllm", base_model="")
    settings.TAG_VLM_MODEL = "stage1"
    assert selectors.tag_vlm_model_problem() == (
        "TAG_VLM_MODEL='stage1' names a model version whose backend (Cascade stage 1 (text classifier)) writes no "
        "free text, so no VLM proposes tags: register a VLM model version (transformers or vLLM backend) and name it "
        "there, or set it empty for the model serving the default policy, or off."
    )
    settings.TAG_VLM_MODEL = "vlm-no-weights"
    assert selectors.tag_vlm_model_problem().startswith(
        "TAG_VLM_MODEL='vlm-no-weights' names a model version with no base model to load"
    )
    for unnamed in ("", "off", "OFF"):  # the serving model, or never: nothing named, nothing to say
        settings.TAG_VLM_MODEL = unnamed
        assert selectors.tag_vlm_model_problem() == "" and _warnings(["default"]) == []


def test_the_check_says_nothing_on_a_database_not_migrated_yet(settings: Any) -> None:
    """`migrate` runs the database checks before it migrates: on a fresh database the registry's table is not there,
    which is no error of this check (the table renamed away here, in a savepoint rolled back after)."""
    settings.TAG_VLM_MODEL = "qwen-vl-7"
    assert len(tag_vlm_model_check(databases=["default"])) == 1
    table = ModelVersion._meta.db_table

    class _RolledBack(Exception):
        pass

    with pytest.raises(_RolledBack), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_not_migrated")
        assert tag_vlm_model_check(databases=["default"]) == []
        raise _RolledBack
    assert len(tag_vlm_model_check(databases=["default"])) == 1  # the table is back
