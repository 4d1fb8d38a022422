"""Finished Tag2CoT tasks are training data: SFT records and DPO pairs with the labeler's stages as the target."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from annotation.models import CotCorrection, Tag2CotTask
from moderation.review.models import AuditEvent
from tests.factories import CotCorrectionFactory, DecisionFactory, PolicyVersionFactory, Tag2CotTaskFactory
from training.errors import TrainingError
from training.models import RetrainRule, SftRecord, TrainingJob
from training.retrain import retrain_rules_evaluate
from training.services import preference_dataset_build, sft_dataset_build

pytestmark = pytest.mark.django_db


def _rows(path):  # type: ignore[no-untyped-def]
    return {r["decision_id"]: r for r in map(json.loads, Path(path).read_text(encoding="utf-8").splitlines())}


def _assistant(row):  # type: ignore[no-untyped-def]
    return row["messages"][2]["content"][0]["text"]


def test_a_finished_tag2cot_task_is_an_sft_record_with_the_labelers_stages(training_dirs, policy_version):
    done = Tag2CotTaskFactory(decision__policy_version=policy_version, decision__video__title="Cheap phones")
    # An open task, even with a draft in its stages, is nobody's finished reasoning yet.
    Tag2CotTaskFactory(decision__policy_version=policy_version, status=Tag2CotTask.Status.OPEN, author=None)

    dataset = sft_dataset_build(created_by=None)

    rows = _rows(dataset.jsonl_path)
    assert set(rows) == {done.decision_id}
    row = rows[done.decision_id]
    assert row["source"] == "tag2cot" and row["label"] == "引导私下交易"
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert "Cheap phones" in row["messages"][1]["content"][-1]["text"]  # the prompt inference builds
    text = _assistant(row)
    assert "tag2cot analysis" in text and "引导私下交易" in text and "content_extraction text" not in text
    lineage = json.loads(row["lineage"])
    assert lineage["source"] == "tag2cot" and lineage["tag2cot_task_id"] == done.pk
    assert lineage["author_id"] == done.author_id and lineage["policy_version_id"] == policy_version.pk
    assert SftRecord.objects.get(dataset=dataset).source == SftRecord.Source.TAG2COT


def test_only_open_tag2cot_tasks_are_no_sft_data(training_dirs, policy_version):
    Tag2CotTaskFactory(decision__policy_version=policy_version, status=Tag2CotTask.Status.OPEN, author=None)
    with pytest.raises(TrainingError, match="finished Tag2CoT tasks"):
        sft_dataset_build(created_by=None)


def test_a_task_under_another_policy_version_than_its_decision_is_not_data(training_dirs, policy_version):
    Tag2CotTaskFactory(
        decision__policy_version=policy_version,
        policy_version=PolicyVersionFactory(policy=policy_version.policy, is_active=False),
    )
    with pytest.raises(TrainingError, match="No SFT data yet"):
        sft_dataset_build(created_by=None)


@pytest.mark.parametrize("later", ["tag2cot", "correction"])
def test_one_record_per_decision_and_the_later_human_work_wins(training_dirs, policy_version, later):
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    now = timezone.now()
    task = Tag2CotTaskFactory(decision=decision, completed_at=now if later == "tag2cot" else now - timedelta(hours=1))
    correction = CotCorrectionFactory(
        decision=decision,
        status=CotCorrection.Status.ACCEPTED,
        reviewed_at=now if later == "correction" else now - timedelta(hours=1),
    )

    sft = _rows(sft_dataset_build(created_by=None).jsonl_path)
    dpo = _rows(preference_dataset_build(created_by=None).jsonl_path)

    for rows in (sft, dpo):
        assert list(rows) == [decision.pk]
        assert rows[decision.pk]["source"] == later
    sft_lineage = json.loads(sft[decision.pk]["lineage"])
    if later == "tag2cot":
        assert "tag2cot analysis" in _assistant(sft[decision.pk]) and sft[decision.pk]["label"] == "引导私下交易"
        assert sft_lineage["tag2cot_task_id"] == task.pk and sft_lineage["superseded_correction_id"] == correction.pk
    else:
        assert "corrected analysis" in _assistant(sft[decision.pk]) and sft[decision.pk]["label"] == "夸大商品功效"
        assert sft_lineage["correction_id"] == correction.pk and sft_lineage["superseded_tag2cot_task_id"] == task.pk


def test_a_finished_tag2cot_task_is_a_dpo_pair_against_the_models_cot(training_dirs, policy_version):
    done = Tag2CotTaskFactory(decision__policy_version=policy_version)
    Tag2CotTaskFactory(decision__policy_version=policy_version, status=Tag2CotTask.Status.OPEN, author=None)

    rows = _rows(preference_dataset_build(created_by=None).jsonl_path)

    assert set(rows) == {done.decision_id}
    row = rows[done.decision_id]
    assert row["source"] == "tag2cot" and row["label"] == "引导私下交易"
    assert "tag2cot analysis" in row["chosen"] and "analysis text" in row["rejected"]  # the model's own CoT
    lineage = json.loads(row["lineage"])
    assert (
        lineage["tag2cot_task_id"] == done.pk and lineage["rejected_model_version_id"] == done.decision.model_version_id
    )


def test_the_build_says_how_many_records_each_source_gave(client_as, training_dirs, policy_version, cot_correction):
    Tag2CotTaskFactory(decision__policy_version=policy_version)
    Tag2CotTaskFactory(decision__policy_version=policy_version)

    response = client_as("admin").post(reverse("training:dataset_build"), {"kind": "sft"}, follow=True)

    said = response.content.decode()
    assert ": 3 SFT records, all to train on, none held out." in said
    assert "By source: Finished Tag2CoT reasoning 2 · Accepted CoT correction 1." in said
    event = AuditEvent.objects.get(action="dataset.build")
    assert event.payload["sources"] == {"correction": 1, "tag2cot": 2}


def test_the_datasets_list_shows_each_versions_records_per_source_as_its_build_counted(
    client_as, training_dirs, policy_version, cot_correction, override_review
):
    """The datasets table showed totals only: which human work a snapshot was built from was said once, in the
    build's message. Each row now says it, from the counts its build recorded (no read of its records)."""
    Tag2CotTaskFactory(decision__policy_version=policy_version)
    Tag2CotTaskFactory(decision__policy_version=policy_version)
    sft = sft_dataset_build(created_by=None)
    dpo = preference_dataset_build(created_by=None)
    assert sft.source_counts == {"correction": 1, "tag2cot": 2}
    assert dpo.source_counts == {"correction": 1, "override": 1, "tag2cot": 2}
    SftRecord.objects.filter(dataset=sft).delete()  # what the list shows is the build's count

    page = client_as("admin").get(reverse("training:job_list")).content.decode()

    rows = {m[0]: m[1] for m in re.findall(r"<td>(\d+)</td>.*?<td class=\"dataset-sources\">(.*?)</td>", page, re.S)}
    assert rows[str(sft.pk)] == "Finished Tag2CoT reasoning 2 · Accepted CoT correction 1"
    assert rows[str(dpo.pk)] == ("Finished Tag2CoT reasoning 2 · Labeler CoT correction 1 · Reviewer override 1")


def test_finished_tag2cot_tasks_count_towards_a_new_data_retrain_rule(training_dirs, policy_version):
    rule = RetrainRule.objects.create(name="sft", kind="sft", condition="new_pairs", threshold=2)
    Tag2CotTaskFactory(decision__policy_version=policy_version, status=Tag2CotTask.Status.OPEN, author=None)
    Tag2CotTaskFactory(decision__policy_version=policy_version)
    assert retrain_rules_evaluate() == []  # one finished task (the open one is not work done) < 2

    Tag2CotTaskFactory(decision__policy_version=policy_version)
    [job_id] = retrain_rules_evaluate()

    rule.refresh_from_db()
    assert rule.last_job_id == job_id and "2 new disagreements" in rule.last_trigger
    job = TrainingJob.objects.get(pk=job_id)
    assert job.dataset.kind == "sft" and job.dataset.train_count == 2
