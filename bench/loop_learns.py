"""Does the product loop make a model better? Held-out verdict accuracy after base, SFT and SFT+DPO.

Runs tests/training/loop_scenario.py (synthetic videos whose verdict follows a risk-phrase rule; the
tiny random model starts near chance) for several seeds on a throwaway database, and measures the
DPO job's own overhead on the loop's DPO data the way bench/dpo_job.py does (our task body against
bare TRL on the same pairs, interleaved). Last line: one JSON object, ``ratio`` first.

    .venv/bin/python bench/loop_learns.py [--seeds 0 1 2] [--jobs 3] [--ratio-repeats 3] [--arch qwen2_5_vl]

``--arch``: the tiny random Llama (default, training/tiny_model.py) or the tiny random Qwen2.5-VL
(tests/tiny_models.py, the architecture users serve), both drawn with std 0.1 so LoRA can move them.

``--jobs N`` runs the seeds in N processes at once (one torch thread each, each seed on its own
throwaway database of the same embedded PostgreSQL); the DPO-overhead ratio is measured in the
process of the last seed. The loop's design (``LoopParams``: pool sizes, steps, learning rates) was
fixed with bench/loop_tune.py on seeds 100 and 101, which are not among the seeds reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.loop_learns``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, django_setup  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ratio-repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=1, help="seeds run in this many processes at once")
    parser.add_argument("--arch", default="llama", choices=["llama", "qwen2_5_vl"])
    parser.add_argument("--database", default="", help=argparse.SUPPRESS)  # a child's own test database
    opts = parser.parse_args()
    if opts.jobs > 1 and len(opts.seeds) > 1:
        _parallel(opts)
        return

    work = Path(tempfile.mkdtemp(prefix="bench-loop-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")
    django_setup()
    import torch
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    torch.set_num_threads(max(1, opts.threads))
    if opts.database:
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = opts.database
    settings.TRAINING_OUTPUT_DIR = work / "training"
    settings.TRAINING_BASE_MODEL = ""
    settings.MEDIA_IMPORT_ROOTS = [str(work)]  # the held-out files are written there
    from workbench.celery import app

    # The loop calls the task bodies itself (as the workers would); what the services enqueue meanwhile
    # (shadow decisions, evaluations, jobs) goes to an in-memory broker nobody reads, so the bench needs
    # no Redis (a private one went away under load during a run on this machine).
    app.conf.broker_url = "memory://"
    load_before = os.getloadavg()[0]
    from tests.training.loop_scenario import LoopParams, run_loop

    settings.VLM_MAX_NEW_TOKENS = LoopParams().max_new_tokens

    per_seed: list[dict] = []  # type: ignore[type-arg]
    started = time.perf_counter()
    old_config = setup_databases(verbosity=0, interactive=False)
    try:
        ratio: dict = {"ratio": None, "paired": [], "spread": {}}  # type: ignore[type-arg]
        cpu_s: list[float] = []  # this process's CPU time: what the loop costs, whatever the machine's load
        for index, seed in enumerate(opts.seeds):
            t0, c0 = time.perf_counter(), time.process_time()
            res = run_loop(seed=seed, work=work, base_model=arch_base_model(opts.arch, work))
            wall = time.perf_counter() - t0
            cpu_s.append(time.process_time() - c0)
            line = {
                "seed": seed,
                "arch": opts.arch,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu_s[-1], 1),
                "stages": res.stages,
                "promoted": res.promoted,
                "gate_reasons": res.gate_reasons,
                "dpo_pairs": res.dpo_pairs,
                "sft_mistakes_on_pool_b": res.mistakes_b,
                "final_serving": res.final_serving,
                "pool_c_accuracy": res.pool_c_accuracy,
                "walls": {k: round(v, 1) for k, v in res.walls.items()},
            }
            per_seed.append(line)
            print(json.dumps(line, ensure_ascii=False), flush=True)
            if index == len(opts.seeds) - 1 and opts.ratio_repeats and res.dpo_pairs:
                ratio = _dpo_overhead(work, opts.ratio_repeats, res.dpo_params, arch_base_model(opts.arch, work))
            _reset_between_seeds()
    finally:
        teardown_databases(old_config, verbosity=0)

    summary = _summary(per_seed, ratio=ratio["ratio"], paired=ratio["paired"], spread=ratio["spread"])
    summary.update(total_wall_s=round(time.perf_counter() - started, 1), load_avg_before=round(load_before, 2))
    summary.update(load_avg_after=round(os.getloadavg()[0], 2), threads=opts.threads, arch=opts.arch)
    print(json.dumps(summary, ensure_ascii=False))


def _parallel(opts: argparse.Namespace) -> None:
    """Each seed in its own process (its own database); the per-seed lines as they come, then one summary."""
    import django

    django.setup()
    from workbench.embedded import start_configured

    start_configured()  # PostgreSQL once, before the children reuse it
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    queue = list(opts.seeds)
    running: list[tuple[int, subprocess.Popen[str]]] = []
    lines: dict[int, list[dict]] = {}  # type: ignore[type-arg]
    while queue or running:
        while queue and len(running) < opts.jobs:
            seed = queue.pop(0)
            argv = [sys.executable, __file__, "--seeds", str(seed), "--threads", str(opts.threads), "--arch", opts.arch]
            argv += ["--ratio-repeats", str(opts.ratio_repeats if seed == opts.seeds[-1] else 0)]
            argv += ["--database", f"test_bench_loop_{os.getpid()}_{seed}"]
            running.append((seed, subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)))  # noqa: S603
        seed, proc = running.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"seed {seed} failed with exit status {proc.returncode}")
        lines[seed] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        print(json.dumps(lines[seed][0], ensure_ascii=False), flush=True)
    per_seed = [lines[s][0] for s in opts.seeds]
    ratio = lines[opts.seeds[-1]][-1]

    summary = _summary(per_seed, ratio=ratio["ratio"], paired=ratio["paired_ratios"], spread=ratio["ratio_spread"])
    summary.update(total_wall_s=round(time.perf_counter() - started, 1), load_avg_before=round(load_before, 2))
    summary.update(load_avg_after=round(os.getloadavg()[0], 2), threads=opts.threads, jobs=opts.jobs, arch=opts.arch)
    print(json.dumps(summary, ensure_ascii=False))


def _summary(per_seed: list[dict], *, ratio: object, paired: object, spread: object) -> dict:  # type: ignore[type-arg]
    """The last line's figures from the per-seed lines: mean accuracy and format validity per stage."""

    def mean(stage: str, key: str) -> float:
        return round(statistics.mean(r["stages"][stage][key] for r in per_seed), 3)

    return {
        "ratio": ratio,
        **{f"{stage}_accuracy": mean(stage, "binary_accuracy") for stage in ("base", "sft", "dpo")},
        **{f"{stage}_validity": mean(stage, "format_validity") for stage in ("base", "sft", "dpo")},
        "per_seed": {
            str(r["seed"]): {
                s: {k: r["stages"][s][k] for k in ("binary_accuracy", "multiclass_accuracy", "format_validity")}
                for s in ("base", "sft", "dpo")
            }
            for r in per_seed
        },
        "dpo_beats_sft": {
            str(r["seed"]): r["stages"]["dpo"]["binary_accuracy"] > r["stages"]["sft"]["binary_accuracy"]
            for r in per_seed
        },  # fmt: skip
        "sft_mistakes_to_pairs": {str(r["seed"]): [r["sft_mistakes_on_pool_b"], r["dpo_pairs"]] for r in per_seed},
        "promoted": {str(r["seed"]): r["promoted"] for r in per_seed},
        "paired_ratios": paired,
        "ratio_spread": spread,
        "loop_wall_s": [r["wall_s"] for r in per_seed],
        "loop_cpu_s": [r["cpu_s"] for r in per_seed],
    }


def arch_base_model(arch: str, work: Path) -> str:
    """The tiny random base model of ``arch``: the local Llama (training.tiny_model), or the tiny Qwen2.5-VL."""
    from training.tiny_model import ensure_tiny_base_model

    if arch == "llama":
        return ensure_tiny_base_model()
    if arch == "qwen2_5_vl":
        from django.conf import settings

        from tests.tiny_models import ensure_tiny_qwen2_5_vl

        return ensure_tiny_qwen2_5_vl(Path(settings.MODELS_DIR) / "tiny-qwen2_5_vl")
    raise SystemExit(f"unknown --arch {arch}")


def _reset_between_seeds() -> None:
    """Each seed starts from an empty app: no decisions, reviews, corrections, datasets or versions."""
    from django.core.management import call_command

    from moderation.inference.backends.transformers_backend import TransformersBackend

    call_command("flush", interactive=False, verbosity=0)
    TransformersBackend._cache.clear()


def _dpo_overhead(work: Path, repeats: int, params: dict, base_model: str) -> dict:  # type: ignore[type-arg]
    """Our DPO task body ÷ bare TRL on the last seed's DPO pairs (bench/dpo_job.py's method and code).

    Both train the same LoRA on the same base model for the same steps; the SFT merge the loop's
    DPO job does first is left out on both sides (bare TRL has no such step).
    """
    sys.path.insert(0, str(ROOT / "bench"))
    from dpo_job import measure  # type: ignore[import-not-found]

    from training.models import PreferenceDataset

    dataset = PreferenceDataset.objects.filter(kind="dpo").latest("created_at")
    same = {k: v for k, v in params.items() if k not in ("init_adapter_path", "max_steps")}
    return measure(dataset, base_model, steps=params["max_steps"], repeats=repeats, work=work / "ratio", params=same)


if __name__ == "__main__":
    main()
