"""The whole product loop improves a model on held-out data (issue 18), once, on the tiny local Llama.

``tests/training/loop_scenario.py`` drives it through the app's services and task bodies: an untrained
base model whose answers do not parse → reviews and CoT corrections → SFT job → evaluation and gate →
decisions on a second pool → DPO pairs from the SFT model's mistakes → DPO job → evaluation and gate →
new decisions by whatever serves. ``bench/loop_learns.py`` runs the same loop over three seeds (and the
tiny Qwen2.5-VL); this test is one seed of it, so a change that stops the loop learning fails the suite.
"""

from __future__ import annotations

import pytest

from moderation.inference.backends.transformers_backend import TransformersBackend
from moderation.models import ModelVersion
from tests.training.loop_scenario import LoopParams, run_loop
from training.models import TrainingJob

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


def test_the_product_loop_turns_a_chance_model_into_an_accurate_one(training_dirs, settings, tmp_path):
    settings.VLM_MAX_NEW_TOKENS = LoopParams().max_new_tokens
    settings.MEDIA_IMPORT_ROOTS = [str(tmp_path)]
    try:
        result = run_loop(seed=0, work=tmp_path)
    finally:
        TransformersBackend._cache.clear()
    base, sft, final = (result.stages[stage] for stage in ("base", "sft", "dpo"))
    assert base["binary_accuracy"] <= 0.5  # the untrained model: its answers do not even parse
    assert result.promoted["sft"] and sft["binary_accuracy"] >= 0.8 and sft["format_validity"] >= 0.8
    assert final["binary_accuracy"] >= 0.8 and final["binary_accuracy"] - base["binary_accuracy"] >= 0.5
    # The gate: DPO serves only if it is strictly better than the SFT model it was trained on.
    serving = ModelVersion.objects.get(name=result.final_serving)
    assert serving.is_serving
    serving_kind = TrainingJob.objects.get(pk=serving.source_job_id).kind
    if result.promoted["dpo"]:
        assert final["binary_accuracy"] > sft["binary_accuracy"] and serving_kind == TrainingJob.Kind.DPO
    else:
        assert final["binary_accuracy"] <= sft["binary_accuracy"] or not result.dpo_pairs
        assert serving_kind == TrainingJob.Kind.SFT
    assert result.pool_c_accuracy is not None and result.pool_c_accuracy >= 0.75
