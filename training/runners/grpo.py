"""The GRPO runner: TRL ``GRPOTrainer`` + PEFT LoRA with BLM-Guard's reward (training/rewards.py).

Prompts come from a snapshot (DPO pairs' ``prompt``, or SFT records' system + user turns) and the
target is the human ``label`` column. Worker-side only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from training.errors import TrainingError
from training.rewards import BackendCritic, reward_functions
from training.runners.common import (
    is_multimodal,
    job_rows,
    load_images_column,
    load_model_and_tokenizer,
    load_vlm_and_processor,
    lora_config,
    train_quietly,
    trainer_kwargs,
)

if TYPE_CHECKING:
    from trl.trainer.grpo_trainer import RewardFunc


def _prompt_of(row: dict[str, Any]) -> str:
    if row.get("prompt"):
        return row["prompt"]
    parts = []
    for message in row["messages"]:
        if message["role"] == "assistant":
            break
        content = message["content"]
        if isinstance(content, list):
            content = "".join(p.get("text") or "" for p in content if p.get("type") == "text")
        parts.append(content)
    return "\n\n".join(parts) + "\n"


def grpo_train(
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
    from trl import GRPOConfig, GRPOTrainer

    if policy_version is None:
        raise TrainingError("A GRPO job needs a policy version (its labels and output format define the reward).")
    out = Path(output_dir)
    raw = job_rows(base_model, jsonl_path, out)
    multimodal = is_multimodal(base_model)
    rows = [
        # A VLM gets conversational prompts: TRL puts the row's images into the user turn.
        {"prompt": [{"role": "user", "content": _prompt_of(row)}], "images": row.get("images") or []}
        if multimodal
        else {"prompt": _prompt_of(row)}
        for row in raw
    ]
    rows = [{**r, "label": row.get("label") or ""} for r, row in zip(rows, raw, strict=True) if row.get("label")]
    if not rows:
        raise TrainingError("No record in this dataset carries a human label to reward against.")
    train_dataset = datasets.Dataset.from_list(rows)
    if multimodal:
        train_dataset = load_images_column(train_dataset)

    policy = policy_version.spec()
    critic = None
    if params["reward_critique_weight"] > 0:
        critic = BackendCritic(
            params["guide_backend"],
            base_model=params["guide_base_model"] or base_model,
            adapter_path=params["guide_adapter_path"],
            policy=policy,
        )
    funcs, weights = reward_functions(
        policy,
        weights={
            "correctness": params["reward_correctness_weight"],
            "structure": params["reward_structure_weight"],
            "critique": params["reward_critique_weight"],
        },
        critic=critic,
    )
    model, tokenizer, use_cpu = (load_vlm_and_processor if multimodal else load_model_and_tokenizer)(base_model)
    args = GRPOConfig(
        **trainer_kwargs(out, params, use_cpu),
        num_generations=params["num_generations"],
        max_completion_length=params["max_completion_length"],
        temperature=params["temperature"],
        beta=params["beta"],
        reward_weights=weights,
    )
    trainer = GRPOTrainer(
        model=model,
        # Ours return list[float]; TRL's RewardFunc may return list[float | None], and TRL only reads it.
        reward_funcs=cast("list[RewardFunc]", funcs),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=lora_config(params),
        callbacks=callbacks or [],
    )
    result = train_quietly(trainer, resume_from_checkpoint)
    return trainer, result
