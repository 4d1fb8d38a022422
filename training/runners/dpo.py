"""The DPO runner: TRL ``DPOTrainer`` with a PEFT LoRA adapter on a preference snapshot's train JSONL.

Worker-side only (heavy imports inside the functions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.errors import TrainingError
from training.runners.common import (
    check_images_fit,
    is_multimodal,
    job_rows,
    load_images_column,
    load_model_and_tokenizer,
    load_vlm_and_processor,
    lora_config,
    train_quietly,
    trainer_kwargs,
)


def dpo_train(
    *,
    base_model: str,
    jsonl_path: str,
    output_dir: str,
    params: dict[str, Any],
    callbacks: list[Any] | None = None,
    resume_from_checkpoint: str | None = None,
    policy_version: Any = None,
) -> tuple[Any, Any]:
    """Train a LoRA adapter with DPO; returns ``(trainer, train_output)``. No database access."""
    import datasets
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import prepare_multimodal_messages

    out = Path(output_dir)
    raw = job_rows(base_model, jsonl_path, out)
    if is_multimodal(base_model):
        # TRL's vision preference collator puts the images into the (conversational) prompt's user turn.
        model, tokenizer, use_cpu = load_vlm_and_processor(base_model)
        train_dataset = load_images_column(
            datasets.Dataset.from_list(
                [
                    {
                        "prompt": prompt_messages(row),
                        "chosen": [{"role": "assistant", "content": row["chosen"]}],
                        "rejected": [{"role": "assistant", "content": row["rejected"]}],
                        "images": row["images"],
                    }
                    for row in raw
                ]
            )
        )
        check_images_fit(
            tokenizer,
            [
                tokenizer.apply_chat_template(
                    prepare_multimodal_messages(prompt_messages(row), images=row["images"]),
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for row in raw
            ],
            params["max_length"],
        )
    else:
        model, tokenizer, use_cpu = load_model_and_tokenizer(base_model)
        if getattr(tokenizer, "chat_template", None):
            # The conversation inference serves (system + user turns through the chat template).
            train_dataset = datasets.Dataset.from_list(
                [
                    {
                        "prompt": prompt_messages(row),
                        "chosen": [{"role": "assistant", "content": row["chosen"]}],
                        "rejected": [{"role": "assistant", "content": row["rejected"]}],
                    }
                    for row in raw
                ]
            )
            prompts = [
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in train_dataset["prompt"]
            ]
        else:
            train_dataset = raw.select_columns(["prompt", "chosen", "rejected"])
            prompts = list(train_dataset["prompt"])
        _check_prompt_lengths(tokenizer, prompts, params["max_length"])

    args = DPOConfig(**trainer_kwargs(out, params, use_cpu), beta=params["beta"], max_length=params["max_length"])
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(params),
        callbacks=callbacks or [],
    )
    result = train_quietly(trainer, resume_from_checkpoint)
    return trainer, result


def prompt_messages(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A pair's prompt as the system + user turns inference sends (one user turn for older snapshots)."""
    if row.get("system") and row.get("user"):
        return [{"role": "system", "content": row["system"]}, {"role": "user", "content": row["user"]}]
    return [{"role": "user", "content": row["prompt"]}]


def _check_prompt_lengths(tokenizer: Any, prompts: list[str], max_length: int) -> None:
    """TRL drops pairs whose prompt alone fills max_length; with none left it fails unreadably."""
    lengths = [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]
    if lengths and min(lengths) >= max_length:
        raise TrainingError(
            f"Every prompt is at least max_length={max_length} tokens long (shortest {min(lengths)}, longest "
            f"{max(lengths)}), so no pair is left to train on. Raise max_length."
        )


def run_dpo_job(job_id: int) -> None:
    """Kept for callers of the first runner; every kind now goes through ``run_job``."""
    from training.runners.common import run_job

    run_job(job_id)
