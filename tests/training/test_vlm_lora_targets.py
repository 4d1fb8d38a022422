"""What a LoRA job trains on the production architecture (the tiny random Qwen2.5-VL), and that the tiny
Qwen and the tiny Llama see the loop's task in the same number of tokens.

Qwen2.5-VL's vision blocks reuse the language model's module names (``gate_proj``, ``up_proj``,
``down_proj``) and PEFT's ``all-linear`` takes every linear layer of the vision tower and the merger;
vLLM serves LoRA on the language model only, so such an adapter would answer differently there.
"""

from __future__ import annotations

import pytest

from tests.training.loop_scenario import COT, SAFE
from training.errors import TrainingError
from training.runners.common import lora_config

pytestmark = pytest.mark.integration

BASE = {"lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0}


@pytest.fixture(scope="module")
def qwen(tiny_qwen_vl):  # type: ignore[no-untyped-def]
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(tiny_qwen_vl)


def _adapted(model, targets: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    """The names of the modules a PEFT model built with the job's LoRA config puts an adapter on."""
    import copy

    from peft import get_peft_model

    peft_model = get_peft_model(copy.deepcopy(model), lora_config({**BASE, "lora_target_modules": targets}, model))
    return sorted({name.split(".lora_A")[0] for name, _ in peft_model.named_parameters() if ".lora_A" in name})


@pytest.mark.parametrize(
    ("targets", "count"),
    [
        (["all-linear"], 14),  # 2 layers x (q, k, v, o, gate, up, down)
        (["gate_proj", "up_proj", "down_proj"], 6),  # the vision blocks' MLPs share these names
        (["q_proj", "v_proj"], 4),
    ],
)
def test_lora_on_a_vlm_stays_inside_its_language_model(qwen, targets, count):
    adapted = _adapted(qwen, targets)

    assert len(adapted) == count, adapted
    assert all(".language_model.layers." in name for name in adapted), adapted
    assert not any("visual" in name or "lm_head" in name for name in adapted)


def test_a_target_the_language_model_lacks_is_refused_readably(qwen):
    with pytest.raises(TrainingError, match=r"None of the LoRA target modules \(qkv\)"):
        lora_config({**BASE, "lora_target_modules": ["qkv"]}, qwen)  # the vision blocks' fused attention


def test_a_text_model_keeps_pefts_own_target_matching():
    config = lora_config({**BASE, "lora_target_modules": ["all-linear"]})

    assert config.target_modules == "all-linear"


def test_the_tiny_qwen_and_llama_tokenize_the_loop_alike(tiny_qwen_vl):
    """Capped at 1,024 tokens the Qwen tokenizer split the loop's answer into 76 tokens against the Llama's 57
    (and its prompt 1.4x), so the two architectures were not learning the same task."""
    from transformers import AutoTokenizer

    from moderation.inference.cot import KUAIMOD_STAGES
    from training.tiny_model import ensure_tiny_base_model

    answer = "\n".join(f"[{title}] {COT[SAFE][key]}" for key, title in KUAIMOD_STAGES) + f" label: {SAFE}"
    qwen_tok = AutoTokenizer.from_pretrained(tiny_qwen_vl)
    llama_tok = AutoTokenizer.from_pretrained(ensure_tiny_base_model())
    qwen_n, llama_n = (len(t(answer, add_special_tokens=False)["input_ids"]) for t in (qwen_tok, llama_tok))

    assert qwen_n <= 1.1 * llama_n, (qwen_n, llama_n)
