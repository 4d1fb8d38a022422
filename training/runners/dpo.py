"""The DPO runner: TRL ``DPOTrainer`` with a PEFT LoRA adapter on a preference dataset's JSONL.

Worker-side only. torch, transformers, trl, peft and datasets are imported inside the functions,
so importing this module (or training.tasks) never loads them into the web process.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from training import services
from training.errors import TrainingError
from training.tiny_model import resolve_base_model

logger = logging.getLogger(__name__)


def dpo_train(
    *,
    base_model: str,
    jsonl_path: str,
    output_dir: str,
    params: dict[str, Any],
    callbacks: list[Any] | None = None,
) -> tuple[Any, Any]:
    """Train a LoRA adapter with DPO; returns ``(trainer, train_output)``. No database access."""
    import datasets
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    out = Path(output_dir)
    looks_like_path = base_model.startswith(("/", ".", "~")) or Path(base_model).exists()
    if looks_like_path and not (Path(base_model).expanduser() / "config.json").exists():
        raise TrainingError(f"Base model folder {base_model} has no config.json (not a saved transformers model).")

    datasets.disable_progress_bars()  # progress goes to the job row; keep worker logs readable
    use_cpu = not torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32 if use_cpu else "auto")

    train_dataset = load_dataset(
        "json", data_files=jsonl_path, split="train", cache_dir=str(out / "hf-datasets-cache")
    ).select_columns(["prompt", "chosen", "rejected"])

    _check_prompt_lengths(tokenizer, list(train_dataset["prompt"]), params["max_length"])

    args = DPOConfig(
        output_dir=str(out / "trainer"),
        max_steps=params["max_steps"],
        per_device_train_batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        beta=params["beta"],
        max_length=params["max_length"],
        seed=params["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=use_cpu,
        bf16=not use_cpu and torch.cuda.is_bf16_supported(),
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    peft_config = LoraConfig(
        r=params["lora_r"],
        lora_alpha=params["lora_alpha"],
        lora_dropout=params["lora_dropout"],
        target_modules=params["lora_target_modules"],
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks or [],
    )
    trainer.remove_callback(PrinterCallback)  # progress goes to the job row and its log tail instead
    result = trainer.train()
    return trainer, result


def _check_prompt_lengths(tokenizer: Any, prompts: list[str], max_length: int) -> None:
    """TRL drops pairs whose prompt alone fills max_length; with none left it fails unreadably."""
    lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
    if lengths and min(lengths) >= max_length:
        raise TrainingError(
            f"Every prompt is at least max_length={max_length} tokens long (shortest {min(lengths)}, longest "
            f"{max(lengths)}), so no pair is left to train on. Raise max_length."
        )


def _progress_callback(job_id: int) -> Any:
    from transformers import TrainerCallback

    class JobProgressCallback(TrainerCallback):
        """Mirror the trainer's progress onto the TrainingJob row; stop when a cancel is requested."""

        def __init__(self) -> None:
            self.cancelled = False

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            services.training_job_progress(
                job_id=job_id, step=0, total_steps=state.max_steps, log_line=f"training {state.max_steps} steps"
            )

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            logs = logs or {}
            loss = logs.get("loss")
            shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in logs.items())
            if services.training_job_progress(
                job_id=job_id, step=state.global_step, loss=loss, log_line=f"step {state.global_step}: {shown}"
            ):
                self.cancelled = True
                control.should_training_stop = True

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if services.training_job_progress(job_id=job_id, step=state.global_step):
                self.cancelled = True
                control.should_training_stop = True

    return JobProgressCallback()


def run_dpo_job(job_id: int) -> None:
    """Train the job's adapter and record the outcome. The job must already be claimed (running)."""
    from training.models import TrainingJob

    job = TrainingJob.objects.select_related("dataset").get(pk=job_id)
    try:
        base_model = resolve_base_model(job.base_model)
        if base_model != job.base_model:
            services.training_job_set_base_model(job_id=job_id, base_model=base_model)
        callback = _progress_callback(job_id)
        trainer, result = dpo_train(
            base_model=base_model,
            jsonl_path=job.dataset.jsonl_path,
            output_dir=job.output_dir or str(services.job_output_dir(job_id)),
            params={**services.DEFAULT_PARAMS, **job.params},
            callbacks=[callback],
        )
        if callback.cancelled:
            services.training_job_finish_cancelled(job_id=job_id)
            return
        adapter_dir = Path(job.output_dir or services.job_output_dir(job_id)) / "adapter"
        trainer.model.save_pretrained(str(adapter_dir))
        trainer.processing_class.save_pretrained(str(adapter_dir))
        losses = [h["loss"] for h in TrainingJob.objects.get(pk=job_id).history if "loss" in h]
        metrics = {
            "final_loss": losses[-1] if losses else None,
            "train_loss": result.training_loss,
            "steps": result.global_step,
            "pairs": job.dataset.pair_count,
            "dataset_id": job.dataset_id,
        }
        services.training_job_succeed(job_id=job_id, adapter_path=str(adapter_dir), metrics=metrics)
    except Exception as exc:  # any failure becomes a visible failed state, never a silent crash
        logger.exception("training job %s failed", job_id)
        message = str(exc).strip() or "no message"
        services.training_job_fail(job_id=job_id, error=f"{type(exc).__name__}: {message}")
