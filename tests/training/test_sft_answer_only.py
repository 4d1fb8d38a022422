"""The SFT job trains on the answer only: every prompt token (rubric, the video's text) is masked out of
the loss, the assistant's answer and its end-of-turn token are not, in a text model and a VLM.

Trained on the whole conversation the tiny model spent its capacity on the ~420 prompt tokens and never
learned the 57-token answer format (bench/loop_learns.py: format validity 0 after SFT).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from training.errors import TrainingError
from training.runners.common import TrainRun
from training.runners.sft import prompt_completion, sft_trainer_args

ANSWER = "[Content extraction] text read\n[Analysis] asks to pay off the platform\n[Final judgment] label: 正向"
SYSTEM = "You are a content moderator. Policy labels: 正向, 引导私下交易."
USER = "<<<UNTRUSTED title>>>\nMy day, pay me by bank transfer\n<<<END UNTRUSTED>>>"

PARAMS = {
    "max_steps": 1,
    "batch_size": 2,
    "learning_rate": 1e-3,
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "lora_target_modules": ["q_proj", "v_proj"],
    "max_length": 1024,
    "save_steps": 100,
    "seed": 0,
}


def _record(images: list[str]) -> dict:  # type: ignore[type-arg]
    user = [{"type": "image"} for _ in images] + [{"type": "text", "text": USER}]
    return {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
            {"role": "user", "content": user},
            {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
        ],
        "images": images,
    }


def _jpeg(path: Path) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 30, 30)).save(buf, format="JPEG")
    path.write_bytes(buf.getvalue())
    return str(path)


@pytest.mark.integration
@pytest.mark.parametrize("architecture", ["tiny_llama", "tiny_qwen_vl"])
def test_only_the_answer_and_its_end_of_turn_carry_loss(architecture, request, tmp_path):
    if architecture == "tiny_llama":
        from training.tiny_model import ensure_tiny_base_model

        base, images = ensure_tiny_base_model(), []
    else:
        base, images = request.getfixturevalue("tiny_qwen_vl"), [_jpeg(tmp_path / "kf.jpg")]
    jsonl = tmp_path / "sft.jsonl"
    jsonl.write_text("\n".join(json.dumps(_record(images), ensure_ascii=False) for _ in range(2)) + "\n")

    from trl import SFTTrainer

    run = TrainRun(base_model=base, jsonl_path=str(jsonl), output_dir=tmp_path / "out", params=PARAMS)
    trainer = SFTTrainer(**sft_trainer_args(run))  # the job's trainer, less the LoRA and callbacks common.fit adds
    batch = next(iter(trainer.get_train_dataloader()))
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)

    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        learned = tokenizer.decode(ids[labels != -100])
        masked = tokenizer.decode(ids[(labels == -100) & (ids != tokenizer.pad_token_id)])
        assert learned.startswith(ANSWER), learned
        assert tokenizer.eos_token in learned or "<|im_end|>" in learned, learned  # it learns to stop
        assert "bank transfer" in masked and "Policy labels" in masked and "bank transfer" not in learned
        assert ANSWER not in masked


def test_a_record_without_an_answer_is_refused():
    with pytest.raises(TrainingError, match="must end with the assistant"):
        prompt_completion([{"role": "user", "content": "hello"}])


def test_the_tiny_qwen_language_model_is_drawn_wide_enough_for_lora_to_move_it(tiny_qwen_vl):
    """With transformers' std 0.02 no LoRA adapter could lift one logit far above the rest (see the tiny Llama);
    the tiny Qwen2.5-VL's language model is drawn at std 0.1, its recipe marked so a cached copy is rebuilt."""
    from safetensors.torch import load_file

    from tests.tiny_models import QWEN_INIT_STD, QWEN_RECIPE

    weights = load_file(str(Path(tiny_qwen_vl) / "model.safetensors"))
    [embed] = [w for name, w in weights.items() if name.endswith("embed_tokens.weight")]
    q_proj = [w for name, w in weights.items() if name.startswith("model.layers.") and name.endswith("q_proj.weight")]
    assert float(embed.std()) == pytest.approx(QWEN_INIT_STD, rel=0.1)
    assert q_proj and all(float(w.std()) == pytest.approx(QWEN_INIT_STD, rel=0.15) for w in q_proj)
    assert (Path(tiny_qwen_vl) / "workbench_recipe.txt").read_text() == f"qwen2_5_vl {QWEN_RECIPE} std={QWEN_INIT_STD}"
