"""What every job kind shares: model loading, LoRA, trainer arguments, checkpoints, progress, outcome.

Worker-side only. torch, transformers, trl, peft and datasets are imported inside the functions, so
importing this module (or training.tasks) never loads them into the web process.

A job runs in the worker process (``TRAINING_LAUNCHER = "inprocess"``, the default) or in child
processes started by ``accelerate launch --config_file TRAINING_ACCELERATE_CONFIG`` (multi-GPU nodes;
see training/accelerate/*.yaml). Either way ``run_job`` does the work; with several processes only
the main one writes progress rows, saves the adapter and registers the model version.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from training import artifacts, services
from training.errors import TrainingError, training_error_text
from training.tiny_model import resolve_base_model
from workbench import storage
from workbench.storage import StorageUnavailable

logger = logging.getLogger(__name__)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class TrainRun:
    """What ``run_job`` hands a kind's runner (``sft_train``, ``dpo_train``, ``grpo_train``).

    Runners read no database row: only GRPO reads the policy version, for its reward.
    """

    base_model: str
    jsonl_path: str
    output_dir: Path
    params: dict[str, Any]
    callbacks: list[Any] = field(default_factory=list)
    resume_from_checkpoint: str | None = None
    policy_version: Any = None


def job_rows(run: TrainRun) -> Any:
    """The shared start of every runner: the base model must exist, and the snapshot's JSONL rows load."""
    import datasets
    from datasets import load_dataset

    check_base_model(run.base_model)
    datasets.disable_progress_bars()  # progress goes to the job row; keep worker logs readable
    cache_dir = str(run.output_dir / "hf-datasets-cache")
    return load_dataset("json", data_files=run.jsonl_path, split="train", cache_dir=cache_dir)


def fit(run: TrainRun, trainer_class: Any, **trainer_args: Any) -> tuple[Any, Any]:
    """The shared end of every runner: the kind's TRL trainer with the job's LoRA adapter and progress
    callbacks, trained (resuming from the job's checkpoint when there is one); ``(trainer, train_output)``."""
    peft_config = lora_config(run.params, trainer_args.get("model"))
    trainer = trainer_class(**trainer_args, peft_config=peft_config, callbacks=list(run.callbacks))
    return trainer, train_quietly(trainer, run.resume_from_checkpoint)


def train_quietly(trainer: Any, resume_from_checkpoint: str | None) -> Any:
    """Run a trainer whose progress goes to the job row and its log tail, not to stdout."""
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)
    return trainer.train(resume_from_checkpoint=resume_from_checkpoint)


def check_base_model(base_model: str) -> None:
    looks_like_path = base_model.startswith(("/", ".", "~")) or Path(base_model).exists()
    if looks_like_path and not (Path(base_model).expanduser() / "config.json").exists():
        raise TrainingError(f"Base model folder {base_model} has no config.json (not a saved transformers model).")
    if not looks_like_path and not services.hub_model_cached(base_model):
        # The form refuses these; a job queued another way (a retrain rule, the configured default) fails here
        # at once instead of after the hub look-ups time out.
        raise TrainingError(f"Base model {base_model} is not in this server's model cache (nothing is downloaded).")


def is_multimodal(base_model: str) -> bool:
    from transformers import AutoConfig

    return hasattr(AutoConfig.from_pretrained(base_model), "vision_config")


def load_model_and_tokenizer(base_model: str) -> tuple[Any, Any, bool]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    use_cpu = not torch.cuda.is_available()
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32 if use_cpu else "auto")
    return model, tokenizer, use_cpu


def load_vlm_and_processor(base_model: str) -> tuple[Any, Any, bool]:
    """A vision-language base model (``AutoModelForImageTextToText``) and its processor (TRL's VLM collators)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from moderation.inference.backends.vlm_processor import load_processor

    use_cpu = not torch.cuda.is_available()
    processor = load_processor(base_model)  # Qwen-VL without torchvision: the images-only build
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    model = AutoModelForImageTextToText.from_pretrained(base_model, dtype=torch.float32 if use_cpu else "auto")
    return model, processor, use_cpu


def load_images_column(dataset: Any) -> Any:
    """The snapshot's ``images`` column holds keyframe file paths; TRL's VLM collators want loaded images."""
    import datasets

    missing = sorted({path for paths in dataset["images"] for path in paths if not Path(path).is_file()})
    if missing:
        raise TrainingError(
            f"{len(missing)} keyframe image(s) of this dataset no longer exist on disk (first: {missing[0]}). "
            "Rebuild the dataset."
        )
    return dataset.cast_column("images", datasets.Sequence(datasets.Image()))


def check_images_fit(processor: Any, texts: list[str], max_length: int) -> None:
    """Image placeholders past ``max_length`` would be truncated away and fail deep inside the processor.

    Counts the tokens up to each text's last image placeholder (before the processor expands it into
    the image's patch tokens, so a lower bound) and refuses readably when that alone reaches max_length.
    """
    image_token = getattr(processor, "image_token", None) or "<image>"
    prefixes = [text[: text.rfind(image_token) + len(image_token)] for text in texts if image_token in text]
    if not prefixes:
        return
    lengths = [len(ids) for ids in processor.tokenizer(prefixes, add_special_tokens=False)["input_ids"]]
    if max(lengths) >= max_length:
        raise TrainingError(
            f"The keyframe images sit after token {max(lengths)} of the longest prompt, past max_length={max_length}, "
            "so truncation would cut them off. Raise max_length."
        )


def lora_config(params: dict[str, Any], model: Any = None) -> Any:
    """The job's LoRA adapter; on a vision-language ``model``, inside its language model only."""
    from peft import LoraConfig

    targets = params["lora_target_modules"]
    target_modules: Any = "all-linear" if targets == ["all-linear"] else targets
    if model is not None and hasattr(model.config, "vision_config"):
        target_modules = language_model_targets(model, targets)
    return LoraConfig(
        r=params["lora_r"],
        lora_alpha=params["lora_alpha"],
        lora_dropout=params["lora_dropout"],
        target_modules=target_modules,
        task_type="CAUSAL_LM",
    )


def language_model_targets(model: Any, targets: list[str]) -> list[str]:
    """The full names of a VLM's linear layers that ``targets`` names (or all of them: ``all-linear``),
    inside its language model only.

    Module names repeat across the towers: Qwen2.5-VL's vision blocks have their own ``gate_proj``,
    ``up_proj`` and ``down_proj``, and PEFT's ``all-linear`` takes the vision blocks and the merger too.
    vLLM serves LoRA on the language model only, so an adapter with vision-tower weights would answer
    differently there than under transformers (and the vision encoder stays frozen, as in Qwen-VL's own
    fine-tuning recipes).
    """
    import torch

    decoder = model.get_decoder()
    prefix = next(name for name, module in model.named_modules() if module is decoder)
    names = [
        f"{prefix}.{name}"
        for name, module in decoder.named_modules()
        if isinstance(module, torch.nn.Linear) and (targets == ["all-linear"] or name.rsplit(".", 1)[-1] in targets)
    ]
    if not names:
        raise TrainingError(
            f"None of the LoRA target modules ({', '.join(targets)}) is a linear layer of "
            f"{type(model).__name__}'s language model."
        )
    return names


def trainer_kwargs(output_dir: Path, params: dict[str, Any], use_cpu: bool) -> dict[str, Any]:
    """The TrainingArguments every kind shares (checkpoints every ``save_steps``)."""
    import torch

    return {
        "output_dir": str(output_dir / "trainer"),
        "max_steps": params["max_steps"],
        "per_device_train_batch_size": params["batch_size"],
        "learning_rate": params["learning_rate"],
        "seed": params["seed"],
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": params["save_steps"],
        "save_total_limit": 2,
        "report_to": [],
        "use_cpu": use_cpu,
        "bf16": not use_cpu and torch.cuda.is_bf16_supported(),
        "gradient_checkpointing": False,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def latest_checkpoint(output_dir: str | Path) -> tuple[str, int] | None:
    """The newest complete ``checkpoint-N`` folder the trainer wrote, and N."""
    root = Path(output_dir) / "trainer"
    if not root.is_dir():
        return None
    found = []
    for child in root.iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and (child / "trainer_state.json").exists():  # written last: the checkpoint is complete
            found.append((int(match.group(1)), child))
    if not found:
        return None
    step, path = max(found)
    return str(path), step


# How often (seconds) a running job writes its progress row: the step, heartbeat, buffered loss points
# and log lines, and the cancel check. Writing on every step cost a transaction or two per step
# (bench/dpo_job.py); once a second was still the job's only per-step cost in a profile (43 locked
# writes, 1.6 % of a 40-step tiny-model DPO job on a loaded machine, every step being over a second
# there). Every 5 s keeps the screen's progress and the cancel check prompt (the heartbeat goes stale
# only after 10 minutes); checkpoints and the end of training always write at once.
PROGRESS_FLUSH_SECONDS = 5.0


def progress_callback(job_id: int) -> Any:
    from transformers import TrainerCallback

    class JobProgressCallback(TrainerCallback):
        """Mirror the trainer's progress onto the TrainingJob row; stop when a cancel is requested.

        Loss/reward points and log lines are buffered and written together, at most once per
        ``PROGRESS_FLUSH_SECONDS`` (and always at a checkpoint and at the end), so the row's history
        holds every logged step while a step costs no database round trip.
        """

        def __init__(self) -> None:
            self.cancelled = False
            self._points: list[dict[str, Any]] = []
            self._lines: list[str] = []
            self._last_write = float("-inf")

        def _stop(self, control: Any) -> None:
            self.cancelled = True
            control.should_training_stop = True

        def _due(self, force: bool) -> bool:
            now = time.monotonic()
            if not force and now - self._last_write < PROGRESS_FLUSH_SECONDS:
                return False
            self._last_write = now
            return True

        def _flush(self, state: Any, control: Any, *, force: bool = False, total_steps: int | None = None) -> None:
            if not state.is_world_process_zero:
                if self._due(force) and services.training_job_cancel_requested(job_id=job_id):
                    self._stop(control)
                return
            if not self._due(force):
                return
            points, lines = self._points, self._lines
            self._points, self._lines = [], []
            if services.training_job_progress(
                job_id=job_id, step=state.global_step, total_steps=total_steps, points=points, log_lines=lines
            ):
                self._stop(control)

        def on_train_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self._lines.append(f"training {state.max_steps} steps")
            self._flush(state, control, force=True, total_steps=state.max_steps)

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if not state.is_world_process_zero:
                return
            logs = logs or {}
            loss, reward = logs.get("loss"), logs.get("reward")
            if loss is None and reward is None:
                return  # the end-of-training summary repeats nothing new
            shown = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in logs.items()
                if k in ("loss", "reward", "reward_std", "learning_rate", "grad_norm", "epoch")
                or k.startswith("rewards/")
            )
            point: dict[str, Any] = {"step": state.global_step}
            if loss is not None:
                point["loss"] = round(float(loss), 6)
            if reward is not None:
                point["reward"] = round(float(reward), 6)
                # The spread is what GRPO learns from (services.grpo_no_learning_signal reads it).
                for key in ("reward_std", "frac_reward_zero_std"):
                    if logs.get(key) is not None:
                        point[key] = round(float(logs[key]), 6)
            self._points.append(point)
            self._lines.append(f"step {state.global_step}: {shown}")

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            if state.global_step >= state.max_steps:
                # transformers saves a full checkpoint (adapter, optimizer, scheduler, RNG states; on object
                # storage also uploaded) at the last step whatever save_steps says; the job saves its adapter
                # right after, so that checkpoint would only be written and left behind. A worker dying
                # between here and the adapter save resumes from the last periodic checkpoint instead.
                control.should_save = False
            self._flush(state, control)

        def on_save(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            # The history up to a checkpoint is written with it: a resumed job keeps exactly that.
            if state.is_world_process_zero:
                # Object storage: a retried job on another node resumes from this checkpoint.
                artifacts.publish_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")
                self._lines.append(f"checkpoint-{state.global_step} saved")
            self._flush(state, control, force=True)

        def on_train_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self._flush(state, control, force=True)

    return JobProgressCallback()


def _train(kind: str, run: TrainRun) -> tuple[Any, Any]:
    if kind == "sft":
        from training.runners.sft import sft_train

        return sft_train(run)
    if kind == "grpo":
        from training.runners.grpo import grpo_train

        return grpo_train(run)
    from training.runners.dpo import dpo_train

    return dpo_train(run)


def run_job(job_id: int) -> None:
    """Train the job's adapter and record the outcome. The job must already be claimed (running).

    Resumes from the newest checkpoint in the job's folder when one is there (the job's previous
    worker died). Failures become a visible failed state; a worker's death (BaseException) is left
    to propagate so the job stays ``running`` until its heartbeat goes stale.
    """
    from training.models import TrainingJob

    job = TrainingJob.objects.select_related("dataset", "policy_version").get(pk=job_id)
    output_dir = job.output_dir or str(services.job_output_dir(job_id))
    if storage.is_object_storage():
        # This node's own folder; the job's checkpoints come from (and go to) the object store.
        output_dir = str(artifacts.local_path(output_dir))
    main_process = int(os.environ.get("RANK", "0")) == 0
    try:
        base_model = resolve_base_model(job.base_model)
        if base_model != job.base_model and main_process:
            services.training_job_set_base_model(job_id=job_id, base_model=base_model)
        check_base_model(base_model)
        artifacts.fetch_latest_checkpoint(Path(output_dir))
        params = {**services.DEFAULT_PARAMS, **services.KIND_PARAMS[job.kind], **job.params}
        merged_dir = Path(output_dir) / "merged-base"
        if params.get("init_adapter_path") and base_model != str(merged_dir):
            base_model = merge_init_adapter(base_model, params["init_adapter_path"], merged_dir)
            if main_process:  # the version this job registers serves its adapter on the merged weights
                services.training_job_set_base_model(job_id=job_id, base_model=base_model)
        checkpoint = latest_checkpoint(output_dir)
        if main_process:
            services.training_job_begin(job_id=job_id, resume_step=checkpoint[1] if checkpoint else None)
        callback = progress_callback(job_id)
        trainer, result = _train(
            job.kind,
            TrainRun(
                base_model=base_model,
                jsonl_path=str(artifacts.local_file(job.dataset.jsonl_path)),
                output_dir=Path(output_dir),
                params=params,
                callbacks=[callback],
                resume_from_checkpoint=checkpoint[0] if checkpoint else None,
                policy_version=job.policy_version,
            ),
        )
        if not trainer.is_world_process_zero():
            return
        if callback.cancelled:
            services.training_job_finish_cancelled(job_id=job_id)
            return
        adapter_dir = Path(output_dir) / "adapter"
        trainer.save_model(str(adapter_dir))
        trainer.processing_class.save_pretrained(str(adapter_dir))
        history = TrainingJob.objects.get(pk=job_id).history  # flushed by the callback's on_train_end
        losses = [h["loss"] for h in history if h.get("loss") is not None]
        rewards = [h["reward"] for h in history if h.get("reward") is not None]
        metrics = {
            "final_loss": losses[-1] if losses else None,
            "train_loss": result.training_loss,
            "steps": result.global_step,
            "records": job.dataset.train_count or job.dataset.pair_count,
        }
        if rewards:
            metrics["final_reward"] = rewards[-1]
        adapter_path = artifacts.publish_adapter(adapter_dir)
        services.training_job_succeed(job_id=job_id, adapter_path=adapter_path, metrics=metrics)
    except StorageUnavailable as exc:  # the store is away: re-queued to resume later, not failed
        logger.warning("training job %s: object store unreachable: %s", job_id, exc)
        if main_process:
            services.training_job_wait_for_storage(job_id=job_id, error=str(exc))
    except Exception as exc:  # any failure becomes a visible failed state, never a silent crash
        logger.exception("training job %s failed", job_id)
        if main_process:  # our own refusals read as they are, anything else with its class name
            services.training_job_fail(job_id=job_id, error=training_error_text(exc))


def merge_init_adapter(base_model: str, adapter_path: str, target: Path) -> str:
    """Save ``base_model`` with ``adapter_path`` merged into its weights at ``target`` (once); return it.

    Written to a temporary folder and renamed into place, so a resumed job (or another rank) finds
    either a complete merged model or none.
    """
    import shutil
    import tempfile

    if (target / "config.json").exists():
        return str(target)
    from peft import PeftModel

    if is_multimodal(base_model):
        model, processing_class, _ = load_vlm_and_processor(base_model)
    else:
        model, processing_class, _ = load_model_and_tokenizer(base_model)
    merged = PeftModel.from_pretrained(model, adapter_path).merge_and_unload()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".merged-", dir=target.parent))
    try:
        merged.save_pretrained(str(tmp))
        processing_class.save_pretrained(str(tmp))
        if not (target / "config.json").exists():
            os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return str(target)


def accelerate_command(job_id: int, config_file: str) -> list[str]:
    """``accelerate launch`` for a job: one process per GPU per the config, each running ``run_job``."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        config_file,
        "-m",
        "training.runners.launch",
        str(job_id),
    ]


# TRAINING_LAUNCHER's values (checked at start: ``workbench.checks.SETTING_CHOICES``); anything but "accelerate" ran
# in process.
TRAINING_LAUNCHERS = ("inprocess", "accelerate")


def run_job_launched(job_id: int) -> None:
    """Run a claimed job in this process, or through ``accelerate launch`` when configured."""
    if settings.TRAINING_LAUNCHER != "accelerate":
        run_job(job_id)
        return
    config_file = str(settings.TRAINING_ACCELERATE_CONFIG)
    if not Path(config_file).is_file():
        services.training_job_fail(job_id=job_id, error=f"Accelerate config {config_file} does not exist.")
        return
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "workbench.settings")}
    proc = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        accelerate_command(job_id, config_file), env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-5:]
        services.training_job_fail(
            job_id=job_id, error=f"accelerate launch exited with {proc.returncode}: " + " | ".join(tail)
        )
