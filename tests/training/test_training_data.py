"""SFT and DPO snapshots: TRL formats, lineage, dedup, leak-free split, JSONL + HF folder that TRL loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotation.models import Adjudication, CotCorrection
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, ReviewTaskFactory, UserFactory
from training.data import split_for, split_group_for
from training.errors import TrainingError
from training.services import dataset_export_hf, preference_dataset_build, sft_dataset_build

pytestmark = pytest.mark.django_db


def _rows(path):  # type: ignore[no-untyped-def]
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def confirmed(policy_version):  # type: ignore[no-untyped-def]
    decision = DecisionFactory(policy_version=policy_version, video__title="Cooking noodles")
    return ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision, verdict="approve", label="正向")


def test_sft_records_are_trl_messages_with_images_and_lineage(
    training_dirs, cot_correction, confirmed, override_review
):
    dataset = sft_dataset_build(created_by=None)

    rows = {r["decision_id"]: r for r in _rows(dataset.jsonl_path)}
    assert set(rows) == {cot_correction.decision_id, confirmed.decision_id}  # an override is not SFT data
    row = rows[cot_correction.decision_id]
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert "Policy labels" in row["messages"][0]["content"][0]["text"]
    assert "Miracle tea" in row["messages"][1]["content"][-1]["text"]
    assert row["messages"][2]["content"][0]["text"].endswith("label: 夸大商品功效 | reason: corrected final_judgment")
    assert row["images"] == []
    lineage = json.loads(row["lineage"])
    assert (
        lineage["correction_id"] == cot_correction.pk
        and lineage["policy_version_id"] == cot_correction.decision.policy_version_id
    )
    assert json.loads(rows[confirmed.decision_id]["lineage"])["confirming_review_id"] == confirmed.pk
    assert dataset.kind == "sft" and dataset.train_count == 2


def test_a_confirmed_cot_that_a_human_later_contradicted_is_not_sft_data(training_dirs, confirmed):
    ReviewFactory(task=ReviewTaskFactory(decision=confirmed.decision, slot=1), decision=confirmed.decision)
    with pytest.raises(TrainingError, match="No SFT data yet"):
        sft_dataset_build(created_by=None)


def test_dpo_lineage_names_reviews_policy_and_the_model_that_erred(training_dirs, override_review):
    dataset = preference_dataset_build(created_by=None)
    [row] = _rows(dataset.jsonl_path)
    lineage = json.loads(row["lineage"])
    decision = override_review.decision
    assert lineage["review_ids"] == [override_review.pk] and lineage["override_review_id"] == override_review.pk
    assert lineage["rejected_model_version"] == decision.model_version.name
    assert lineage["policy_version_id"] == decision.policy_version_id
    assert row["label"] == "引导私下交易"


def test_adjudicated_disagreements_become_pairs(training_dirs, policy_version):
    decision = DecisionFactory(policy_version=policy_version, label="正向")
    Adjudication.objects.create(
        video=decision.video,
        decision=decision,
        kind="reported_pass",
        reason="reports",
        status="decided",
        outcome_label="低俗色情",
        note="Users were right.",
        decided_by=UserFactory(role="moderator"),
    )
    agreed = DecisionFactory(policy_version=policy_version, label="正向")
    Adjudication.objects.create(
        video=agreed.video, decision=agreed, kind="reported_pass", reason="r", status="decided", outcome_label="正向"
    )

    [row] = _rows(preference_dataset_build(created_by=None).jsonl_path)
    assert row["source"] == "adjudication" and row["decision_id"] == decision.pk
    assert row["chosen"].splitlines()[-1] == "[Final judgment] label: 低俗色情 | reason: Users were right."


def test_identical_pairs_are_kept_once_and_the_split_keeps_a_video_together(training_dirs, policy_version):
    first = DecisionFactory(policy_version=policy_version, video__title="Same clip")
    # A second model version decided the same video identically; the same override twice → one pair.
    from tests.factories import ModelVersionFactory

    second = DecisionFactory(
        policy_version=policy_version, video=first.video, model_version=ModelVersionFactory(name="v2")
    )
    for d in (first, second):
        ReviewFactory(task=ReviewTaskFactory(decision=d), decision=d)
    others = [DecisionFactory(policy_version=policy_version) for _ in range(12)]
    for d in others:
        ReviewFactory(task=ReviewTaskFactory(decision=d), decision=d)
        CotCorrectionFactory(decision=d, status=CotCorrection.Status.ACCEPTED)

    dataset = preference_dataset_build(created_by=None, eval_share=0.4)

    assert dataset.pairs.filter(decision__video=first.video).count() == 1
    assert dataset.train_count + dataset.eval_count == 13 and dataset.eval_count > 0
    train_videos = {json.loads(r["lineage"])["video_id"] for r in _rows(dataset.jsonl_path)}
    eval_videos = {json.loads(r["lineage"])["video_id"] for r in _rows(dataset.eval_jsonl_path)}
    assert not train_videos & eval_videos
    for pair in dataset.pairs.select_related("decision__video"):
        assert pair.split == split_for(split_group_for(pair.decision.video), 0.4)


@pytest.mark.integration
def test_jsonl_and_hf_folder_both_load_in_trl_and_train_a_step(
    training_dirs, cot_correction, confirmed, override_review
):
    import datasets
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    from training.data import flatten_messages
    from training.tiny_model import ensure_tiny_base_model

    sft = sft_dataset_build(created_by=None)
    dpo = preference_dataset_build(created_by=None)
    base = ensure_tiny_base_model()
    tokenizer = AutoTokenizer.from_pretrained(base)
    common = {
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "report_to": [],
        "use_cpu": True,
        "save_strategy": "no",
        "disable_tqdm": True,
    }

    for loaded in (
        datasets.load_dataset("json", data_files=sft.jsonl_path, split="train", cache_dir=str(training_dirs / "c")),
        datasets.load_from_disk(dataset_export_hf(dataset_id=sft.pk))["train"],
    ):
        assert {"messages", "images"} <= set(loaded.column_names)
        text_only = datasets.Dataset.from_list(
            [{"messages": flatten_messages(r["messages"], keep_images=False)} for r in loaded]
        )
        trainer = SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(base),
            processing_class=tokenizer,
            train_dataset=text_only,
            args=SFTConfig(output_dir=str(training_dirs / "sft"), **common),
        )
        assert trainer.train().global_step == 1

    sft.refresh_from_db()
    assert sft.hf_path and Path(sft.hf_path, "dataset_dict.json").exists()
    for loaded in (
        datasets.load_dataset("json", data_files=dpo.jsonl_path, split="train", cache_dir=str(training_dirs / "c")),
        datasets.load_from_disk(dataset_export_hf(dataset_id=dpo.pk))["train"],
    ):
        assert {"prompt", "chosen", "rejected", "images"} <= set(loaded.column_names)
        trainer = DPOTrainer(
            model=AutoModelForCausalLM.from_pretrained(base),
            processing_class=tokenizer,
            train_dataset=loaded.select_columns(["prompt", "chosen", "rejected"]),
            args=DPOConfig(output_dir=str(training_dirs / "dpo"), **common),
        )
        assert trainer.train().global_step == 1
