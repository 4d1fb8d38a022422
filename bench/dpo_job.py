"""Overhead of our DPO job path against a bare TRL script on the same tiny model and data.

ours: the Celery task body (claim → runner → per-step progress rows → adapter save → model version
      registration) on a real (throwaway) Postgres database.
bare: load tokenizer/model, load the JSONL, DPOTrainer with the same config, train, save the adapter.

Both train on the same conversations (the pairs' system + user turns through the chat template, as
the job does) in this one process, in interleaved pairs whose order alternates (bare-ours, ours-bare,
…) so a drift in machine load hits both sides alike, after a warm-up that pays the import and
first-call costs. ``ratio`` is the median of the per-pair ratios; their spread (min, max, quartiles)
and the ratio of medians are reported too, and the same for the process's CPU seconds (``cpu_ratio``:
what the load of other processes does not inflate; PostgreSQL's CPU for our few writes is not in it). torch uses one thread by default so that other processes
on a small machine disturb the two sides alike. The load average is printed. ``--profile`` runs our
job once under cProfile and prints where its own code (not torch's) spends time.
The last line printed is one JSON object.

    .venv/bin/python bench/dpo_job.py [--steps 40] [--repeats 8] [--pairs 8] [--threads 1] [--profile]

Neither side saves a checkpoint inside 40 steps (the job's default is every 50; bare TRL saves none).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import django_setup

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


def _ours(dataset, steps: int, params: dict | None = None, base_model: str = "") -> tuple[float, float]:  # type: ignore[no-untyped-def,type-arg]
    """(wall seconds, this process's CPU seconds) of one job run by the task body."""
    from training.models import TrainingJob
    from training.services import training_job_start
    from training.tasks import run_training_job

    job = training_job_start(
        dataset=dataset, created_by=None, params={**(params or {}), "max_steps": steps}, base_model=base_model
    )
    t0, c0 = time.perf_counter(), time.process_time()
    run_training_job(job.pk)  # the task body, as the train worker runs it
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    job.refresh_from_db()
    if job.status != TrainingJob.Status.SUCCEEDED or job.step != steps:
        raise SystemExit(f"our job did not succeed: {job.status} step {job.step}: {job.error}")
    return elapsed, cpu


def _bare(base_model: str, jsonl: str, steps: int, params: dict, out: Path) -> tuple[float, float]:  # type: ignore[type-arg]
    """A plain TRL script: the same model, pairs (as conversations), LoRA and DPO settings; no job row."""
    t0, c0 = time.perf_counter(), time.process_time()
    import torch
    from datasets import Dataset, load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from trl import DPOConfig, DPOTrainer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
    rows = load_dataset("json", data_files=jsonl, split="train", cache_dir=str(out / "cache"))
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "system", "content": r["system"]}, {"role": "user", "content": r["user"]}],
                "chosen": [{"role": "assistant", "content": r["chosen"]}],
                "rejected": [{"role": "assistant", "content": r["rejected"]}],
            }
            for r in rows
        ]
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
    targets = params["lora_target_modules"]
    lora = LoraConfig(
        r=params["lora_r"],
        lora_alpha=params["lora_alpha"],
        lora_dropout=params["lora_dropout"],
        target_modules="all-linear" if targets == ["all-linear"] else targets,
        task_type="CAUSAL_LM",
    )
    trainer = DPOTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=lora)
    trainer.remove_callback(PrinterCallback)  # a script would not print 40 log dicts either
    trainer.train()
    trainer.model.save_pretrained(str(out / "adapter"))  # type: ignore[union-attr,operator]
    tokenizer.save_pretrained(str(out / "adapter"))
    return time.perf_counter() - t0, time.process_time() - c0


def measure(dataset, base_model: str, *, steps: int, repeats: int, work: Path, params: dict | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """Interleaved, order-alternating pairs of bare and our runs on ``dataset``; the ratio and its spread."""
    from training.services import DEFAULT_PARAMS, KIND_PARAMS

    full = {**DEFAULT_PARAMS, **KIND_PARAMS["dpo"], **(params or {})}
    # Warm-up: imports, first tokenizer/model load and first TRL construction for both paths.
    _bare(base_model, dataset.jsonl_path, 1, full, work / "bare-warm")
    _ours(dataset, 1, params, base_model)
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "bare": []}
    loads = []
    for i in range(repeats):
        loads.append(round(os.getloadavg()[0], 1))
        order = ("bare", "ours") if i % 2 == 0 else ("ours", "bare")
        for side in order:
            if side == "bare":
                runs["bare"].append(_bare(base_model, dataset.jsonl_path, steps, full, work / f"bare-{i}"))
            else:
                runs["ours"].append(_ours(dataset, steps, params, base_model))
    ours, bare = [w for w, _ in runs["ours"]], [w for w, _ in runs["bare"]]
    paired = [o / b for o, b in zip(ours, bare, strict=True)]
    # CPU seconds of this process: what other processes' load does not add (it slows both sides' wall
    # time by whatever the scheduler hands out in that minute). Not counted: PostgreSQL's own CPU for
    # our job's few writes.
    paired_cpu = [o / b for (_, o), (_, b) in zip(runs["ours"], runs["bare"], strict=True)]
    return {
        "ratio": round(statistics.median(paired), 3),
        "paired": [round(r, 3) for r in paired],
        "spread": _spread(paired),
        "ratio_of_medians": round(statistics.median(ours) / statistics.median(bare), 3),
        "cpu_ratio": round(statistics.median(paired_cpu), 3),
        "cpu_paired": [round(r, 3) for r in paired_cpu],
        "cpu_spread": _spread(paired_cpu),
        "ours_s": [round(x, 3) for x in ours],
        "bare_s": [round(x, 3) for x in bare],
        "ours_cpu_s": [round(c, 3) for _, c in runs["ours"]],
        "bare_cpu_s": [round(c, 3) for _, c in runs["bare"]],
        "load_per_pair": loads,
    }


def _spread(values: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return {"min": round(min(values), 3), "q1": round(quartiles[0], 3), "q3": round(quartiles[2], 3),
            "max": round(max(values), 3)}  # fmt: skip


def _profile(dataset, steps: int) -> None:  # type: ignore[no-untyped-def]
    """Where our job's own code spends its time (cumulative), beside the trainer's."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(_ours, dataset, steps)
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative")
    print("--- our job, cumulative time in the workbench's own functions ---")
    stats.print_stats(r"/(training|moderation|workbench)/", 25)
    print("--- and the heaviest calls overall ---")
    stats.print_stats(20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="cProfile one run of our job first")
    opts = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-dpo-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")

    django_setup()
    import torch
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    torch.set_num_threads(max(1, opts.threads))
    load_before = os.getloadavg()[0]
    settings.TRAINING_OUTPUT_DIR = work / "training"
    settings.TRAINING_BASE_MODEL = ""

    from training.services import preference_dataset_build
    from training.tiny_model import ensure_tiny_base_model

    # A throwaway test database (migrated), dropped at the end whatever happens.
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        _seed_pairs(opts.pairs)
        dataset = preference_dataset_build(created_by=None, name="bench")
        base_model = ensure_tiny_base_model()

        if opts.profile:
            _ours(dataset, 1)  # warm
            _profile(dataset, opts.steps)
        result = measure(dataset, base_model, steps=opts.steps, repeats=opts.repeats, work=work)
        print(f"ours runs: {result['ours_s']}  bare runs: {result['bare_s']}", flush=True)
    finally:
        teardown_databases(old_config, verbosity=0)  # the private Redis stops at exit (settings_test)
    print(
        json.dumps(
            {
                "ratio": result["ratio"],
                "ratio_of_medians": result["ratio_of_medians"],
                "cpu_ratio": result["cpu_ratio"],
                "cpu_paired_ratios": result["cpu_paired"],
                "cpu_spread": result["cpu_spread"],
                "paired_ratios": result["paired"],
                "spread": result["spread"],
                "load_avg_before": round(load_before, 2),
                "load_avg_after": round(os.getloadavg()[0], 2),
                "threads": opts.threads,
                "ours_s": statistics.median(result["ours_s"]),
                "bare_s": statistics.median(result["bare_s"]),
                "steps": opts.steps,
                "pairs": dataset.pair_count,
                "repeats": opts.repeats,
                "load_per_pair": result["load_per_pair"],
            }
        )
    )


if __name__ == "__main__":
    main()
