from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.models import CotCorrection
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, ReviewTaskFactory
from training.errors import TrainingError
from training.models import PreferencePair
from training.services import preference_dataset_build

pytestmark = pytest.mark.django_db


def _rows(dataset):  # type: ignore[no-untyped-def]
    lines = Path(dataset.jsonl_path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_builder_turns_an_override_and_a_correction_into_trl_pairs(
    training_dirs, override_review, cot_correction, make_user
):
    dataset = preference_dataset_build(created_by=make_user("admin"), name="first")

    assert dataset.pair_count == 2
    assert Path(dataset.jsonl_path) == training_dirs / "datasets" / str(dataset.pk) / "train.jsonl"
    rows = {row["decision_id"]: row for row in _rows(dataset)}
    assert set(rows) == {override_review.decision_id, cot_correction.decision_id}
    for row in rows.values():
        assert set(row) == {
            "prompt",
            "system",
            "user",
            "chosen",
            "rejected",
            "images",
            "label",
            "decision_id",
            "source",
            "lineage",
        }
        assert row["prompt"] == f"{row['system']}\n\n{row['user']}\n"

    override = rows[override_review.decision_id]
    assert override["source"] == "override"
    # The prompt is inference's prompt: the policy's labels, then the video's content fenced as data.
    assert "- 引导私下交易: Steering users to private deals" in override["prompt"]
    assert "Cheap phones" in override["prompt"] and "add me on wechat to buy" in override["prompt"]
    assert override["prompt"].index("Policy labels") < override["prompt"].index("Cheap phones")
    chosen = override["chosen"].splitlines()
    assert chosen[0] == "[Content extraction] content_extraction text"  # the model's extraction is kept
    assert chosen[1].strip() == "[Analysis]"  # its wrong reasoning is not
    assert chosen[-1] == "[Final judgment] label: 引导私下交易 | reason: Tells viewers to buy off the platform."
    assert override["rejected"].splitlines() == [
        "[Content extraction] content_extraction text",
        "[Analysis] analysis text",
        "[Intermediate check] intermediate_check text",
        "[User-feedback analysis] user_feedback text",
        "[Final judgment] label: 正向 | reason: final_judgment text",
    ]

    correction = rows[cot_correction.decision_id]
    assert correction["source"] == "correction"
    assert correction["chosen"].splitlines()[0] == "[Content extraction] corrected content_extraction"
    assert (
        correction["chosen"].splitlines()[-1]
        == "[Final judgment] label: 夸大商品功效 | reason: corrected final_judgment"
    )
    assert correction["rejected"].splitlines()[-1] == "[Final judgment] label: 正向 | reason: final_judgment text"
    assert dataset.pairs.count() == 2


def test_a_correction_wins_over_an_override_of_the_same_decision(training_dirs, override_review, make_user):
    CotCorrectionFactory(decision=override_review.decision, label="违法犯罪", status=CotCorrection.Status.ACCEPTED)

    dataset = preference_dataset_build(created_by=None)

    [row] = _rows(dataset)
    assert row["source"] == "correction"
    assert row["chosen"].splitlines()[-1].startswith("[Final judgment] label: 违法犯罪")
    assert list(dataset.pairs.values_list("source", flat=True)) == [PreferencePair.Source.CORRECTION]


@pytest.mark.parametrize("status", ["draft", "submitted", "rejected"])
def test_approvals_and_unaccepted_corrections_give_no_pairs(training_dirs, policy_version, status):
    approved = DecisionFactory(policy_version=policy_version)
    ReviewFactory(task=ReviewTaskFactory(decision=approved), decision=approved, verdict="approve", label="正向")
    CotCorrectionFactory(decision__policy_version=policy_version, status=status)

    with pytest.raises(TrainingError, match="No overrides or corrections yet"):
        preference_dataset_build(created_by=None)


def test_empty_input_is_a_clear_error(training_dirs):
    with pytest.raises(TrainingError, match="No overrides or corrections yet"):
        preference_dataset_build(created_by=None)
    assert not (training_dirs / "datasets").exists()


def test_pairs_parse_with_the_inference_parser(training_dirs, override_review, cot_correction, policy_version):
    from moderation.inference.cot import parse

    dataset = preference_dataset_build(created_by=None)

    labels = set(policy_version.label_names())
    for row in _rows(dataset):
        assert parse(row["chosen"], policy_version.output_format, labels).label != "正向"
        assert parse(row["rejected"], policy_version.output_format, labels).label == "正向"


def test_exported_jsonl_loads_with_datasets(training_dirs, override_review, cot_correction, tmp_path):
    from datasets import load_dataset

    dataset = preference_dataset_build(created_by=None)

    loaded = load_dataset("json", data_files=dataset.jsonl_path, split="train", cache_dir=str(tmp_path / "cache"))
    assert loaded.num_rows == 2
    assert {"prompt", "chosen", "rejected"} <= set(loaded.column_names)
    assert all(row["chosen"] != row["rejected"] for row in loaded)


def test_pairs_from_one_models_mistakes_leave_out_every_other_models(training_dirs, policy_version, make_user):
    """KuaiMod's mistake-oriented DPO after SFT: the rejected side is the serving (SFT) model's own wrong answer,
    not the base model's garbage that the SFT model no longer writes."""
    from tests.factories import ModelVersionFactory

    base, sft = ModelVersionFactory(name="base"), ModelVersionFactory(name="sft-job-1")
    old = CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version, model_version=base),
                               status=CotCorrection.Status.ACCEPTED)  # fmt: skip
    mine = CotCorrectionFactory(decision=DecisionFactory(policy_version=policy_version, model_version=sft),
                                status=CotCorrection.Status.ACCEPTED)  # fmt: skip
    base_override = DecisionFactory(policy_version=policy_version, model_version=base)
    ReviewFactory(task=ReviewTaskFactory(decision=base_override), decision=base_override)
    sft_override = DecisionFactory(policy_version=policy_version, model_version=sft)
    ReviewFactory(task=ReviewTaskFactory(decision=sft_override), decision=sft_override)

    everything = preference_dataset_build(created_by=None)
    assert {r["decision_id"] for r in _rows(everything)} == {
        old.decision_id, mine.decision_id, base_override.pk, sft_override.pk
    }  # fmt: skip
    only_sft = preference_dataset_build(created_by=make_user("admin"), rejected_model_version=sft)
    rows = _rows(only_sft)
    assert {r["decision_id"] for r in rows} == {mine.decision_id, sft_override.pk}
    assert {json.loads(r["lineage"])["rejected_model_version"] for r in rows} == {"sft-job-1"}
    assert "mistakes of sft-job-1" in only_sft.name

    unused = ModelVersionFactory(name="never-decided")
    with pytest.raises(TrainingError, match="never-decided's decisions"):
        preference_dataset_build(created_by=None, rejected_model_version=unused)


def test_building_twice_from_the_same_data_returns_the_first_snapshot_and_names_stay_distinct(
    training_dirs, override_review, cot_correction, client_as
) -> None:
    from django.urls import reverse

    from training.models import PreferenceDataset

    admin = client_as("admin")
    first = admin.post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True).content.decode()
    again = admin.post(reverse("training:dataset_build"), {"kind": "dpo"}, follow=True).content.decode()

    dataset = PreferenceDataset.objects.get()  # one snapshot for two clicks on the same data
    assert f"Built “{dataset.name}”" in first
    assert "no second, identical snapshot was made" in again and dataset.name in again
    assert preference_dataset_build(created_by=None) == dataset
    # New data is a new snapshot; a name already taken gets its number.
    decision = DecisionFactory(policy_version=override_review.decision.policy_version, label="正向")
    ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision, note="Another private deal.")
    newer = preference_dataset_build(created_by=None, name=dataset.name)
    assert newer != dataset and newer.name == f"{dataset.name} (#{newer.pk})" and newer.pair_count == 3
