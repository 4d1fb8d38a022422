"""Overhead of our DPO job path against a bare TRL script on the same tiny model and data.

ours: the Celery task body (claim → runner → progress rows → adapter save → model version
      registration) on a real (throwaway) Postgres database.
bare: load tokenizer/model, load the JSONL, DPOTrainer with the same config, train, save the adapter.

Both train the same LoRA on the same conversations (the pairs' system + user turns through the chat
template, as the job does) for the same steps and batch, in this one process. This VM's speed
changes by ±20 % between two 10-s runs of the same work even on a quiet machine, so whole runs one
after the other pair badly. By default each pair runs **in lockstep**: our job and the bare script in
two threads that take turns, one optimizer step at a time (the start before the first step and the
end after the last are a turn each), each side's wall time and thread CPU summed over its own turns
only; step k of one side thus runs next to step k of the other. The side that starts alternates
between pairs; one step of each side and one lockstep pair come first and are not counted.
``ratio`` is the median over pairs of our wall time ÷ bare's; its spread (min, quartiles, max), its
medians over the first and second half of the pairs, the ratio of medians and the same for CPU
(``cpu_ratio``; PostgreSQL's CPU for our few writes is not in it) are reported too.

``--sequential``: whole runs instead, bare, ours, bare, …, bare, each of ours divided by the mean of
the two bare runs beside it (a drift linear over three runs cancels), after a discarded warm-up pair,
with ``trainer.train()``-only and per-step ratios from the same stopwatch callback on both sides (the
figure loop_learns.py reports). torch uses one thread by default so that other processes on a small
machine disturb the two sides alike. ``--profile`` runs our job once under cProfile and prints where
its own code (not torch's) spends time. The last line printed is one JSON object.

    .venv/bin/python bench/dpo_job.py [--steps 10] [--repeats 24] [--sequential] [--pairs 8] [--threads 1] [--profile]

Neither side saves a checkpoint (the job's default is every 50 steps, and it skips transformers'
extra checkpoint at the last step because it saves its adapter right after; bare TRL saves none).
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
from typing import Any

# The helpers beside it, also when imported as ``bench.dpo_job``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

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


Timing = tuple[float, float, float, float]  # job wall, job CPU, training-loop wall, training-loop CPU (seconds)


def _step_timer(steps: list[float]) -> Any:
    """The same stopwatch callback on both sides: each optimizer step's wall time into ``steps``."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            steps.append(time.perf_counter() - self.began)

    return StepTimer()


def _ours(
    dataset: Any,
    steps: int,
    params: dict[str, Any] | None = None,
    base_model: str = "",
    step_s: list[float] | None = None,
    callback: Any = None,
) -> Timing:
    """One job run by the task body: its wall and CPU seconds, and those of its ``trainer.train()`` call."""
    from training.models import TrainingJob
    from training.runners import common
    from training.services import training_job_start
    from training.tasks import run_training_job

    job = training_job_start(
        dataset=dataset, created_by=None, params={**(params or {}), "max_steps": steps}, base_model=base_model
    )
    loop: list[float] = []
    train_quietly = common.train_quietly

    def timed(trainer, resume):  # type: ignore[no-untyped-def]
        if step_s is not None:
            trainer.add_callback(_step_timer(step_s))
        if callback is not None:
            trainer.add_callback(callback)
        t, c = time.perf_counter(), time.process_time()
        try:
            return train_quietly(trainer, resume)
        finally:
            loop.extend([time.perf_counter() - t, time.process_time() - c])

    common.train_quietly = timed  # the bench's stopwatch around the job's own call; nothing else changes
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        run_training_job(job.pk)  # the task body, as the train worker runs it
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        common.train_quietly = train_quietly
    job.refresh_from_db()
    if job.status != TrainingJob.Status.SUCCEEDED or job.step != steps:
        raise SystemExit(f"our job did not succeed: {job.status} step {job.step}: {job.error}")
    return elapsed, cpu, loop[0], loop[1]


def _bare(
    base_model: str,
    jsonl: str,
    steps: int,
    params: dict[str, Any],
    out: Path,
    step_s: list[float] | None = None,
    callback: Any = None,
) -> Timing:
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
    if step_s is not None:
        trainer.add_callback(_step_timer(step_s))
    if callback is not None:
        trainer.add_callback(callback)
    t1, c1 = time.perf_counter(), time.process_time()
    trainer.train()
    loop_wall, loop_cpu = time.perf_counter() - t1, time.process_time() - c1
    trainer.model.save_pretrained(str(out / "adapter"))  # type: ignore[union-attr,operator]
    tokenizer.save_pretrained(str(out / "adapter"))
    return time.perf_counter() - t0, time.process_time() - c0, loop_wall, loop_cpu


RATIOS = ("ratio", "cpu_ratio", "loop_ratio", "loop_cpu_ratio")


def measure(dataset, base_model: str, *, steps: int, repeats: int, work: Path, params: dict | None = None) -> dict:  # type: ignore[no-untyped-def,type-arg]
    """``repeats`` of our runs, each between two bare runs (bare, ours, bare, ours, …, bare); the ratios and their spread.

    Each of our runs is compared with the mean of the bare runs just before and just after it, so a
    machine whose speed drifts from minute to minute (this VM's does, by tens of percent) moves both
    sides of every ratio alike: a linear drift cancels exactly, whichever way it goes. Before the
    timed sequence: one step of each side (imports, first loads, first TRL construction) and one full
    bare + ours pair, all discarded. Every run starts after ``gc.collect()`` (the previous run's
    garbage is not collected on the next run's clock), both sides get the same step stopwatch callback.

    Four ratios, each the median of the per-run ratios: the whole job's wall time (``ratio``) and CPU
    seconds (``cpu_ratio``), and the same for the ``trainer.train()`` call alone (``loop_ratio``,
    ``loop_cpu_ratio``: the per-step cost of our callbacks, without the fixed cost of claiming the job
    and registering the version). ``halves`` gives each ratio's median over the first and the second
    half of the runs: two runs' worth of repeatability inside one run. ``step_median_ratio`` compares
    the runs' median step times (what a step costs apart from the rare steps that write the progress
    row); ``step_mean_ratio`` includes those writes.
    """
    import gc

    from training.services import DEFAULT_PARAMS, KIND_PARAMS

    full = {**DEFAULT_PARAMS, **KIND_PARAMS["dpo"], **(params or {})}
    # Warm-up: imports, first tokenizer/model load and first TRL construction for both paths; then one
    # full pair, not counted.
    _bare(base_model, dataset.jsonl_path, 1, full, work / "bare-warm")
    _ours(dataset, 1, params, base_model)
    gc.collect()
    _bare(base_model, dataset.jsonl_path, steps, full, work / "bare-warm-pair")
    gc.collect()
    _ours(dataset, steps, params, base_model)
    runs: dict[str, list[Timing]] = {"ours": [], "bare": []}
    step_s: dict[str, list[list[float]]] = {"ours": [], "bare": []}
    loads = []

    def bare(i: int) -> None:
        gc.collect()
        step_s["bare"].append([])
        runs["bare"].append(_bare(base_model, dataset.jsonl_path, steps, full, work / f"bare-{i}", step_s["bare"][-1]))

    bare(0)
    for i in range(repeats):
        loads.append(round(os.getloadavg()[0], 1))
        gc.collect()
        step_s["ours"].append([])
        runs["ours"].append(_ours(dataset, steps, params, base_model, step_s["ours"][-1]))
        bare(i + 1)
    # CPU seconds of this process: what other processes' load does not add (it slows both sides' wall
    # time by whatever the scheduler hands out in that minute). Not counted: PostgreSQL's own CPU for
    # our job's few writes.
    flanks = list(zip(runs["bare"][:-1], runs["bare"][1:], strict=True))
    paired = {
        name: [o[k] / ((before[k] + after[k]) / 2) for o, (before, after) in zip(runs["ours"], flanks, strict=True)]
        for k, name in enumerate(RATIOS)
    }
    for name, summary in (("step_median_ratio", statistics.median), ("step_mean_ratio", statistics.fmean)):
        per_run = {side: [summary(s) for s in step_s[side]] for side in step_s}
        b = per_run["bare"]
        paired[name] = [o / ((b[i] + b[i + 1]) / 2) for i, o in enumerate(per_run["ours"])]
    half = repeats // 2
    ours, bare_s = [t[0] for t in runs["ours"]], [t[0] for t in runs["bare"]]
    return {
        **{name: round(statistics.median(values), 3) for name, values in paired.items()},
        "paired": {name: [round(r, 3) for r in values] for name, values in paired.items()},
        "spread": {name: _spread(values) for name, values in paired.items()},
        "halves": {
            name: [round(statistics.median(values[:half]), 3), round(statistics.median(values[half:]), 3)]
            for name, values in paired.items()
        }
        if half
        else {},
        "ratio_of_medians": round(statistics.median(ours) / statistics.median(bare_s), 3),
        "ours_s": [[round(x, 3) for x in t] for t in runs["ours"]],
        "bare_s": [[round(x, 3) for x in t] for t in runs["bare"]],
        "step_s_median": {side: round(statistics.median(x for s in step_s[side] for x in s), 4) for side in step_s},
        "load_per_run": loads,
    }


class _Baton:
    """Our job and the bare script in two threads of this process, taking turns: only the side holding
    the baton runs, and it passes it on after each optimizer step (and after its whole start, before
    its first step, and its end). Each side's time is summed over its own turns only (wall and its
    thread's CPU), so both sides meet the machine's speed of the same few seconds."""

    def __init__(self, first: str) -> None:
        import threading

        self.cond = threading.Condition()
        self.turn = first
        self.finished: set[str] = set()
        self.wall = {"ours": 0.0, "bare": 0.0}
        self.cpu = {"ours": 0.0, "bare": 0.0}
        self.turns = {"ours": 0, "bare": 0}
        self._since: dict[str, tuple[float, float]] = {}

    @staticmethod
    def other(side: str) -> str:
        return "bare" if side == "ours" else "ours"

    def _start(self, side: str) -> None:
        self._since[side] = (time.perf_counter(), time.thread_time())

    def _stop(self, side: str) -> None:
        wall, cpu = self._since.pop(side)
        self.wall[side] += time.perf_counter() - wall
        self.cpu[side] += time.thread_time() - cpu
        self.turns[side] += 1

    def begin(self, side: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.turn == side)
        self._start(side)

    def pass_on(self, side: str) -> None:
        self._stop(side)
        with self.cond:
            if self.other(side) not in self.finished:
                self.turn = self.other(side)
                self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == side)
        self._start(side)

    def end(self, side: str) -> None:
        if side in self._since:
            self._stop(side)
        with self.cond:
            self.finished.add(side)
            self.turn = self.other(side)
            self.cond.notify_all()


def _pass_on_each_step(baton: _Baton, side: str) -> Any:
    from transformers import TrainerCallback

    class PassOn(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # type: ignore[no-untyped-def]
            baton.pass_on(side)

    return PassOn()


def measure_lockstep(
    dataset: Any, base_model: str, *, steps: int, repeats: int, work: Path, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``repeats`` pairs, each our job and the bare script run in lockstep (``_Baton``): step k of one
    side next to step k of the other, so a machine whose speed changes from second to second (this VM's
    does, by ±20 % between 10-s runs even when quiet) slows both alike. ``ratio`` is the median over
    pairs of our job's wall time ÷ bare's (each summed over its own turns), ``cpu_ratio`` the same for
    each side's thread CPU. The side that starts alternates; one step of each side and one lockstep
    pair come first and are not counted."""
    import gc
    import threading

    import torch
    from django.db import connection

    from training.services import DEFAULT_PARAMS, KIND_PARAMS

    torch_threads = torch.get_num_threads()
    full = {**DEFAULT_PARAMS, **KIND_PARAMS["dpo"], **(params or {})}
    _bare(base_model, dataset.jsonl_path, 1, full, work / "bare-warm")
    _ours(dataset, 1, params, base_model)

    def pair(i: int) -> _Baton:
        baton = _Baton("bare" if i % 2 == 0 else "ours")
        errors: list[BaseException] = []

        def run(side: str) -> None:
            torch.set_num_threads(torch_threads)  # per thread: a new thread may start with torch's default
            baton.begin(side)
            try:
                if side == "ours":
                    _ours(dataset, steps, params, base_model, callback=_pass_on_each_step(baton, side))
                else:
                    _bare(
                        base_model,
                        dataset.jsonl_path,
                        steps,
                        full,
                        work / f"bare-{i}",
                        callback=_pass_on_each_step(baton, side),
                    )
            except BaseException as exc:  # noqa: BLE001 (re-raised below, in the main thread)
                errors.append(exc)
            finally:
                baton.end(side)
                if side == "ours":
                    connection.close()  # this thread's own database connection

        gc.collect()
        threads = [threading.Thread(target=run, args=(side,)) for side in ("ours", "bare")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        if baton.turns["ours"] < steps or baton.turns["bare"] < steps:
            raise SystemExit(f"lockstep broke: {baton.turns}")
        return baton

    pair(-1)  # warm-up pair, not counted
    batons = []
    loads = []
    for i in range(repeats):
        loads.append(round(os.getloadavg()[0], 1))
        batons.append(pair(i))
    paired = {
        "ratio": [b.wall["ours"] / b.wall["bare"] for b in batons],
        "cpu_ratio": [b.cpu["ours"] / b.cpu["bare"] for b in batons],
    }
    half = repeats // 2
    ours, bare = [b.wall["ours"] for b in batons], [b.wall["bare"] for b in batons]
    return {
        **{name: round(statistics.median(values), 3) for name, values in paired.items()},
        "paired": {name: [round(r, 3) for r in values] for name, values in paired.items()},
        "spread": {name: _spread(values) for name, values in paired.items()},
        "halves": {
            name: [round(statistics.median(values[:half]), 3), round(statistics.median(values[half:]), 3)]
            for name, values in paired.items()
        }
        if half
        else {},
        "ratio_of_medians": round(statistics.median(ours) / statistics.median(bare), 3),
        "ours_s": [[round(b.wall["ours"], 3), round(b.cpu["ours"], 3)] for b in batons],
        "bare_s": [[round(b.wall["bare"], 3), round(b.cpu["bare"], 3)] for b in batons],
        "load_per_run": loads,
    }


def _spread(values: list[float]) -> dict[str, float]:
    quartiles = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
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
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=24, help="lockstep pairs (--sequential: our runs)")
    parser.add_argument(
        "--sequential", action="store_true", help="whole runs one after the other (bare, ours, …, bare) instead"
    )
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
    started = time.perf_counter()
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
        if opts.sequential:
            result = measure(dataset, base_model, steps=opts.steps, repeats=opts.repeats, work=work)
        else:
            result = measure_lockstep(dataset, base_model, steps=opts.steps, repeats=opts.repeats, work=work)
        print(f"ours runs (wall, CPU [, loop wall, loop CPU]): {result['ours_s']}", flush=True)
        print(f"bare runs: {result['bare_s']}", flush=True)
    finally:
        teardown_databases(old_config, verbosity=0)  # the private Redis stops at exit (settings_test)
    print(
        json.dumps(
            {
                "ratio": result["ratio"],
                "mode": "sequential" if opts.sequential else "lockstep",
                **{k: v for k, v in result.items() if k not in ("ratio", "ours_s", "bare_s")},
                "load_avg_before": round(load_before, 2),
                "load_avg_after": round(os.getloadavg()[0], 2),
                "threads": opts.threads,
                "ours_job_s_median": statistics.median(t[0] for t in result["ours_s"]),
                "bare_job_s_median": statistics.median(t[0] for t in result["bare_s"]),
                "steps": opts.steps,
                "pairs": dataset.pair_count,
                "repeats": opts.repeats,
                "wall_s": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
