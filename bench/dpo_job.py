"""Overhead of our DPO job path against a bare TRL script on the same tiny model and data.

ours: the Celery task body (claim → runner → per-step progress rows → adapter save → model version
      registration) on a real (throwaway) Postgres database.
bare: load tokenizer/model, load the JSONL, DPOTrainer with the same config, train, save the adapter.

Both run in this one process, alternately (bare, ours, bare, ours …), after a warm-up that pays the
import and first-call costs. ``ratio`` is the median of the per-repeat ratios of adjacent runs, which
cancels slow changes in machine load better than a ratio of medians (also reported). torch uses one
thread by default so that other processes on a small machine disturb the two sides alike. The load
average is printed: rerun when it is low (< 2). The last line printed is one JSON object.

    .venv/bin/python bench/dpo_job.py [--steps 20] [--repeats 5] [--pairs 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "workbench.settings_test")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _seed_pairs(n: int) -> None:
    """n decisions: half overridden by a reviewer, half corrected by a labeler."""
    from tests.factories import (
        CotCorrectionFactory,
        DecisionFactory,
        PolicyVersionFactory,
        ReviewFactory,
        ReviewTaskFactory,
        SegmentFactory,
    )

    policy_version = PolicyVersionFactory()
    for i in range(n):
        decision = DecisionFactory(policy_version=policy_version, video__title=f"Deal number {i}")
        SegmentFactory(video=decision.video, index=0, text=f"message me privately for deal {i}")
        if i % 2:
            CotCorrectionFactory(decision=decision, status="accepted")
        else:
            ReviewFactory(task=ReviewTaskFactory(decision=decision), decision=decision)


def _ours(dataset, steps: int) -> float:  # type: ignore[no-untyped-def]
    from training.models import TrainingJob
    from training.services import training_job_start
    from training.tasks import run_training_job

    job = training_job_start(dataset=dataset, created_by=None, params={"max_steps": steps})
    t0 = time.perf_counter()
    run_training_job(job.pk)  # the task body, as the train worker runs it
    elapsed = time.perf_counter() - t0
    job.refresh_from_db()
    if job.status != TrainingJob.Status.SUCCEEDED or job.step != steps:
        raise SystemExit(f"our job did not succeed: {job.status} step {job.step}: {job.error}")
    return elapsed


def _bare(base_model: str, jsonl: str, steps: int, params: dict, out: Path) -> float:  # type: ignore[type-arg]
    t0 = time.perf_counter()
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    data = load_dataset("json", data_files=jsonl, split="train", cache_dir=str(out / "cache")).select_columns(
        ["prompt", "chosen", "rejected"]
    )
    args = DPOConfig(
        output_dir=str(out / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=params["batch_size"],
        learning_rate=params["learning_rate"],
        beta=params["beta"],
        max_length=params["max_length"],
        seed=params["seed"],
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    trainer.train()
    trainer.model.save_pretrained(str(out / "adapter"))  # type: ignore[union-attr,operator]
    tokenizer.save_pretrained(str(out / "adapter"))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dpo-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")

    import django

    django.setup()
    from workbench.embedded import start_configured

    start_configured()  # the settings name the embedded services; starting them is ours
    import torch
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    torch.set_num_threads(max(1, opts.threads))
    load_before = os.getloadavg()[0]
    settings.TRAINING_OUTPUT_DIR = work / "training"
    settings.TRAINING_BASE_MODEL = ""

    from training.services import DEFAULT_PARAMS, KIND_PARAMS, preference_dataset_build
    from training.tiny_model import ensure_tiny_base_model

    # A throwaway test database (migrated), dropped at the end whatever happens.
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        _seed_pairs(opts.pairs)
        dataset = preference_dataset_build(created_by=None, name="bench")
        base_model = ensure_tiny_base_model()
        params = {**DEFAULT_PARAMS, **KIND_PARAMS["dpo"]}

        # Warm-up: imports, first tokenizer/model load and first TRL construction for both paths.
        _bare(base_model, dataset.jsonl_path, 1, params, work / "bare-warm")
        _ours(dataset, 1)

        ours, bare = [], []
        for i in range(opts.repeats):
            bare.append(_bare(base_model, dataset.jsonl_path, opts.steps, params, work / f"bare-{i}"))
            ours.append(_ours(dataset, opts.steps))
        ours_s, bare_s = statistics.median(ours), statistics.median(bare)
        paired = [o / b for o, b in zip(ours, bare, strict=True)]
        print(f"ours runs: {[round(x, 3) for x in ours]}  bare runs: {[round(x, 3) for x in bare]}", flush=True)
    finally:
        teardown_databases(old_config, verbosity=0)  # the private Redis stops at exit (settings_test)
    print(
        json.dumps(
            {
                "ratio": round(statistics.median(paired), 3),
                "ratio_of_medians": round(ours_s / bare_s, 3),
                "paired_ratios": [round(r, 3) for r in paired],
                "load_avg_before": round(load_before, 2),
                "load_avg_after": round(os.getloadavg()[0], 2),
                "threads": opts.threads,
                "ours_s": round(ours_s, 3),
                "bare_s": round(bare_s, 3),
                "steps": opts.steps,
                "pairs": dataset.pair_count,
                "repeats": opts.repeats,
            }
        )
    )


if __name__ == "__main__":
    main()
