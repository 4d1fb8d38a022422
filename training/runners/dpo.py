"""The DPO runner: TRL ``DPOTrainer`` with a PEFT LoRA adapter on a preference snapshot's train JSONL.

Worker-side only (heavy imports inside the functions).
"""

from __future__ import annotations

from typing import Any

from training.errors import TrainingError
from training.runners import common


def dpo_train(run: common.TrainRun) -> tuple[Any, Any]:
    """Train a LoRA adapter with DPO; returns ``(trainer, train_output)``. No database access."""
    import datasets
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import prepare_multimodal_messages

    max_length = run.params["max_length"]
    raw = common.job_rows(run)
    if common.is_multimodal(run.base_model):
        # TRL's vision preference collator puts the images into the (conversational) prompt's user turn.
        model, tokenizer, use_cpu = common.load_vlm_and_processor(run.base_model)
        train_dataset = common.load_images_column(
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
        common.check_images_fit(
            tokenizer,
            [
                tokenizer.apply_chat_template(
                    prepare_multimodal_messages(prompt_messages(row), images=row["images"]),
                    tokenize=False,
                    add_generation_prompt=True,
                )
                for row in raw
            ],
            max_length,
        )
    else:
        model, tokenizer, use_cpu = common.load_model_and_tokenizer(run.base_model)
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
        _check_prompt_lengths(tokenizer, prompts, max_length)

    args = DPOConfig(
        **common.trainer_kwargs(run.output_dir, run.params, use_cpu), beta=run.params["beta"], max_length=max_length
    )
    return common.fit(run, DPOTrainer, model=model, args=args, train_dataset=train_dataset, processing_class=tokenizer)


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
