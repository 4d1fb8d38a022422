"""Tuning harness for bench/loop_learns.py's design, run on the tuning seed only (100; never a reported seed).

One loop up to the DPO snapshot (base → SFT → pool B's mistakes), then several DPO jobs on the same
SFT model and pairs, each evaluated on the seed's held-out file. Prints one JSON line per stage and
variant; the last line is one JSON object (``ratio`` = best DPO accuracy ÷ SFT accuracy, 1 when the SFT model made no
mistakes on pool B and no DPO job ran).

    .venv/bin/python bench/loop_tune.py --seed 100 --pool-a 12 --pool-b 64 --sft-steps 60 \
        --dpo '{"learning_rate": 1e-4}' '{"learning_rate": 5e-4, "beta": 0.2}'
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.loop_tune``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--arch", default="llama", choices=["llama", "qwen2_5_vl"])
    parser.add_argument("--pool-a", type=int, default=None)
    parser.add_argument("--pool-b", type=int, default=None)
    parser.add_argument("--sft", default="{}", help="JSON: SFT job params over LoopParams'")
    parser.add_argument("--dpo", nargs="+", default=["{}"], help="JSON per DPO variant, over LoopParams'")
    opts = parser.parse_args()
    if opts.seed in (0, 1, 2):
        raise SystemExit("seeds 0, 1 and 2 are the reported ones; tune on another")

    work = Path(tempfile.mkdtemp(prefix="bench-loop-tune-"))
    os.environ["MEDIA_ROOT"] = str(work / "media")
    django_setup()
    import torch
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    torch.set_num_threads(1)
    settings.TRAINING_OUTPUT_DIR = work / "training"
    settings.TRAINING_BASE_MODEL = ""
    settings.MEDIA_IMPORT_ROOTS = [str(work)]
    from workbench.celery import app

    app.conf.broker_url = "memory://"
    from loop_learns import arch_base_model  # type: ignore[import-not-found]

    from tests.training.loop_scenario import Loop, LoopParams

    params = LoopParams()
    if opts.pool_a:
        params.pool_a = opts.pool_a
    if opts.pool_b:
        params.pool_b = opts.pool_b
    params.sft.update(json.loads(opts.sft))
    settings.VLM_MAX_NEW_TOKENS = params.max_new_tokens
    old = setup_databases(verbosity=0, interactive=False)
    best = 0.0
    try:
        t0 = time.perf_counter()
        loop = Loop(seed=opts.seed, work=work, params=params, base_model=arch_base_model(opts.arch, work))
        loop.base()
        loop.sft()
        pairs = loop.pool_b()
        print(json.dumps({"stages": loop.result.stages, "mistakes_b": loop.result.mistakes_b,
                          "pairs": pairs.pair_count if pairs else 0, "walls": loop.result.walls,
                          "elapsed": round(time.perf_counter() - t0, 1)}), flush=True)  # fmt: skip
        for i, variant in enumerate(opts.dpo if pairs else []):
            t1 = time.perf_counter()
            stage = f"dpo_{i}"
            loop.dpo(pairs, {**params.dpo, **json.loads(variant)}, stage)
            best = max(best, loop.result.stages[stage]["binary_accuracy"])
            print(json.dumps({"variant": variant, **loop.result.stages[stage],
                              "wall": round(time.perf_counter() - t1, 1)}), flush=True)  # fmt: skip
    finally:
        teardown_databases(old, verbosity=0)
    sft = loop.result.stages["sft"]["binary_accuracy"]
    print(json.dumps({"ratio": round(max(best, sft) / max(sft, 1e-9), 3), "sft_accuracy": sft, "dpo_best": best}))


if __name__ == "__main__":
    main()
