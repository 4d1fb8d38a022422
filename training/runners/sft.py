"""The SFT runner: TRL ``SFTTrainer`` with a PEFT LoRA adapter on an SFT snapshot's chat records.

Text-only base models get the records' messages with their text parts joined (their chat templates
take string content); multimodal ones keep the typed parts and the ``images`` column. Worker-side only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.data import flatten_messages
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


def sft_train(
    *,
    base_model: str,
    jsonl_path: str,
    output_dir: str,
    params: dict[str, Any],
    callbacks: list[Any] | None = None,
    resume_from_checkpoint: str | None = None,
    policy_version: Any = None,
) -> tuple[Any, Any]:
    import datasets
    from trl import SFTConfig, SFTTrainer

    out = Path(output_dir)
    multimodal = is_multimodal(base_model)
    raw = job_rows(base_model, jsonl_path, out)
    if multimodal:
        train_dataset = load_images_column(raw.select_columns(["messages", "images"]))
        model, processing_class, use_cpu = load_vlm_and_processor(base_model)
        check_images_fit(
            processing_class,
            [processing_class.apply_chat_template(m, tokenize=False) for m in raw["messages"]],
            params["max_length"],
        )
    else:
        train_dataset = datasets.Dataset.from_list(
            [{"messages": flatten_messages(row["messages"], keep_images=False)} for row in raw]
        )
        model, processing_class, use_cpu = load_model_and_tokenizer(base_model)

    args = SFTConfig(**trainer_kwargs(out, params, use_cpu), max_length=params["max_length"], packing=False)
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=processing_class,
        peft_config=lora_config(params),
        callbacks=callbacks or [],
    )
    result = train_quietly(trainer, resume_from_checkpoint)
    return trainer, result
