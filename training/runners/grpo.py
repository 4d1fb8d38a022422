"""The GRPO runner: TRL ``GRPOTrainer`` + PEFT LoRA with BLM-Guard's reward (training/rewards.py).

Prompts come from a snapshot (DPO pairs' ``prompt``, or SFT records' system + user turns) and the
target is the human ``label`` column. Worker-side only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from training.errors import TrainingError
from training.rewards import BackendCritic, reward_functions
from training.runners import common

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


def grpo_train(run: common.TrainRun) -> tuple[Any, Any]:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    if run.policy_version is None:
        raise TrainingError("A GRPO job needs a policy version (its labels and output format define the reward).")
    params = run.params
    raw = common.job_rows(run)
    multimodal = common.is_multimodal(run.base_model)
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
        train_dataset = common.load_images_column(train_dataset)

    policy = run.policy_version.spec()
    critic = None
    if params["reward_critique_weight"] > 0:
        critic = BackendCritic(
            params["guide_backend"],
            base_model=params["guide_base_model"] or run.base_model,
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
    load = common.load_vlm_and_processor if multimodal else common.load_model_and_tokenizer
    model, tokenizer, use_cpu = load(run.base_model)
    args = GRPOConfig(
        **common.trainer_kwargs(run.output_dir, params, use_cpu),
        num_generations=params["num_generations"],
        max_completion_length=params["max_completion_length"],
        temperature=params["temperature"],
        beta=params["beta"],
        reward_weights=weights,
    )
    return common.fit(
        run,
        GRPOTrainer,
        model=model,
        # Ours return list[float]; TRL's RewardFunc may return list[float | None], and TRL only reads it.
        reward_funcs=cast("list[RewardFunc]", funcs),
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
    )
