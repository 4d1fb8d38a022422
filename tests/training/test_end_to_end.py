"""The whole loop on CPU with the tiny local Llama: reviews → SFT/DPO data → SFT, DPO and GRPO jobs →
adapters → evaluation → release gate → promotion → new decisions made by the promoted adapter.

Task bodies run in this process (as the train/infer workers run them); the broker path is covered by
test_jobs.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from annotation.models import CotCorrection
from moderation.inference.services import decision_create_for_video, model_version_register, model_version_serving
from moderation.models import AuditEvent, ItemLabel, ModelVersion
from tests.factories import CotCorrectionFactory, DecisionFactory, ReviewFactory, ReviewTaskFactory, VideoFactory
from training.errors import TrainingError
from training.evaluation import evaluation_execute, evaluation_start
from training.models import TrainingJob
from training.release import model_version_promote_gated, promotion_check
from training.services import preference_dataset_build, sft_dataset_build, training_job_start
from training.tasks import run_training_job

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def _run(job: TrainingJob) -> TrainingJob:
    run_training_job(job.pk)
    job.refresh_from_db()
    assert job.status == TrainingJob.Status.SUCCEEDED, job.error + job.log_tail
    return job


def _evaluate(version: ModelVersion):  # type: ignore[no-untyped-def]
    run = evaluation_execute(run_id=evaluation_start(model_version=version, created_by=None).pk)
    assert run is not None and run.status == "succeeded", run and run.error
    return run


def test_reviews_to_promoted_adapter(training_dirs, policy_version, make_user, settings):
    settings.VLM_MAX_NEW_TOKENS = 8
    admin = make_user("admin")
    overridden = DecisionFactory(policy_version=policy_version, video__title="Add me on WeChat for a deal")
    ReviewFactory(task=ReviewTaskFactory(decision=overridden), decision=overridden)
    corrected = DecisionFactory(policy_version=policy_version, video__title="Miracle tea cures all")
    CotCorrectionFactory(decision=corrected, status=CotCorrection.Status.ACCEPTED, reviewed_by=admin)
    confirmed = DecisionFactory(policy_version=policy_version, video__title="Cooking noodles")
    ReviewFactory(task=ReviewTaskFactory(decision=confirmed), decision=confirmed, verdict="approve", label="正向")
    for decision, label in ((overridden, "引导私下交易"), (corrected, "夸大商品功效"), (confirmed, "正向")):
        ItemLabel.objects.create(video=decision.video, label=label, source="review", policy_version=policy_version)

    sft = sft_dataset_build(created_by=admin)
    dpo = preference_dataset_build(created_by=admin)
    assert (sft.train_count, dpo.train_count) == (2, 2)

    small = {"max_steps": 2, "save_steps": 1}
    sft_job = _run(training_job_start(dataset=sft, created_by=admin, params=small))
    dpo_job = _run(training_job_start(dataset=dpo, created_by=admin, params=small))
    grpo_job = _run(
        training_job_start(
            dataset=dpo,
            created_by=admin,
            kind="grpo",
            params={**small, "num_generations": 2, "batch_size": 2, "max_completion_length": 8},
        )
    )
    for job in (sft_job, dpo_job, grpo_job):
        assert job.step == 2 and (Path(job.output_dir) / "adapter" / "adapter_config.json").exists()
        assert job.model_version.adapter_path == str(Path(job.output_dir) / "adapter")
        assert job.model_version.metrics["kind"] == job.kind
    assert all("reward" in h for h in grpo_job.history)
    # The spread is recorded: equal rewards within every group (not only all 0) mean nothing was learned.
    assert all("frac_reward_zero_std" in h for h in grpo_job.history)
    assert [h["step"] for h in sft_job.history] == [1, 2]

    # The evidence baseline serves; the DPO adapter (2 steps on a random model) writes no parseable CoT.
    baseline = model_version_serving()
    base_run = _evaluate(baseline)
    dpo_run = _evaluate(dpo_job.model_version)
    assert base_run.metrics["format_validity"] == 1.0 and base_run.n_items == 3
    assert dpo_run.metrics["format_validity"] == 0.0 and dpo_run.metrics["strict_accuracy"] == 0.0
    assert sum(map(sum, dpo_run.confusion["matrix"])) == 3 and "(unparsed)" in dpo_run.confusion["labels"]

    with pytest.raises(TrainingError, match=r"Format validity \(outputs that parse\) would drop from 1.000 to 0.000"):
        model_version_promote_gated(candidate=dpo_job.model_version, by=admin)
    assert model_version_serving() == baseline
    assert AuditEvent.objects.filter(action="model_promotion_refused", object_id=str(dpo_job.model_version.pk)).exists()

    # Arrange: the untuned base model serves (as before any fine-tuning). The GRPO adapter (2 steps on a
    # random model) is no better, so the gate refuses it: an equal candidate is not promoted.
    from moderation.inference.services import model_version_promote

    base_vlm = model_version_register(name="tiny-base", backend="transformers", base_model=grpo_job.base_model)
    model_version_promote(model_version=base_vlm)
    _evaluate(base_vlm)
    _evaluate(grpo_job.model_version)
    check = promotion_check(candidate=grpo_job.model_version)
    # Two steps on a random model usually earn no reward at all: the gate then says it learned nothing
    # before comparing evaluations; otherwise the comparison refuses it.
    refusal = "learned nothing" if grpo_job.model_version.metrics.get("no_learning_signal") else "not better"
    assert not check.allowed and refusal in check.reasons[-1]
    with pytest.raises(TrainingError, match=refusal):
        model_version_promote_gated(candidate=grpo_job.model_version, by=admin)
    assert model_version_serving() == base_vlm
    # (tests/training/test_loop_learns.py shows the gate promoting an adapter that is better.)

    # Serving it anyway (moderation's own, ungated switch) makes the adapter decide new items.
    model_version_promote(model_version=grpo_job.model_version)
    assert model_version_serving() == grpo_job.model_version
    fresh = VideoFactory(title="A brand new upload")
    decision = decision_create_for_video(video_id=fresh.pk)
    assert decision.model_version == grpo_job.model_version and decision.backend == "transformers"
    from moderation.inference.backends.transformers_backend import TransformersBackend

    backend = TransformersBackend._cache[(grpo_job.base_model, grpo_job.model_version.adapter_path)]
    assert type(backend.model).__name__ == "PeftModelForCausalLM"
