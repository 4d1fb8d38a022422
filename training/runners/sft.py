"""The SFT runner: TRL ``SFTTrainer`` with a PEFT LoRA adapter on an SFT snapshot's chat records.

Text-only base models get the records' messages with their text parts joined (their chat templates
take string content); multimodal ones keep the typed parts and the ``images`` column. Worker-side only.
"""

from __future__ import annotations

from typing import Any

from training.data import flatten_messages
from training.runners import common


def sft_train(run: common.TrainRun) -> tuple[Any, Any]:
    import datasets
    from trl import SFTConfig, SFTTrainer

    max_length = run.params["max_length"]
    raw = common.job_rows(run)
    if common.is_multimodal(run.base_model):
        train_dataset = common.load_images_column(raw.select_columns(["messages", "images"]))
        model, processing_class, use_cpu = common.load_vlm_and_processor(run.base_model)
        common.check_images_fit(
            processing_class,
            [processing_class.apply_chat_template(m, tokenize=False) for m in raw["messages"]],
            max_length,
        )
    else:
        train_dataset = datasets.Dataset.from_list(
            [{"messages": flatten_messages(row["messages"], keep_images=False)} for row in raw]
        )
        model, processing_class, use_cpu = common.load_model_and_tokenizer(run.base_model)

    args = SFTConfig(**common.trainer_kwargs(run.output_dir, run.params, use_cpu), max_length=max_length, packing=False)
    return common.fit(
        run, SFTTrainer, model=model, args=args, train_dataset=train_dataset, processing_class=processing_class
    )
