"""Learning curve of stage 1 as reviewers work a queue over the KuaiMod dev records.

Start with 40 labels, retrain every 20, score binary accuracy on a locked 25 % fold after each
retrain; uncertainty order (the queue's label-value order) vs arrival order (the bare baseline), 5
seeds, same first labels and locked fold for both; also two variants (half uncertain / half arrival,
uncertainty spread by k-means; see ``moderation.inference.stage1.learning``), unless --no-variants. Saves the result where the cascade dashboard
draws it (var/models/cascade/learning_curve.json = MODELS_DIR/cascade/ by default; --out). Last line: one JSON object, ``ratio`` first.

    .venv/bin/python bench/learning_curve.py [--data dev.jsonl] [--seeds 5] [--full]

The model is stage 1's default stacked head; without ``--full`` its per-field C grid is (1, 4, 16)
with 3 inner folds (about 2x cheaper on this shared machine; the full setting is 4 C values, 5 folds).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import ROOT, django_setup


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=Path("/work/shared/datasets/kuaimod/dev.jsonl"))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--full", action="store_true", help="the full C grid and 5 inner folds")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the independent (seed, order) curves")
    parser.add_argument(
        "--no-variants", action="store_true", help="only arrival and uncertainty (skip the mixed and diverse orders)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "var" / "models" / "cascade" / "learning_curve.json",
        help="for the dashboard",
    )
    args = parser.parse_args()
    django_setup()
    from moderation.inference.evaluation import records_as_inputs
    from moderation.inference.kuaimod import kuaimod_read
    from moderation.inference.stage1.learning import ORDERS, VARIANTS, simulate_learning_curves
    from moderation.inference.stage1.model import Stage1Config
    from moderation.policies.seed import SAFE_LABEL

    records = kuaimod_read(args.data).records
    config = Stage1Config() if args.full else Stage1Config(name="bench", stack_cs=(1.0, 4.0, 16.0), stack_folds=3)
    started = time.perf_counter()
    curves = simulate_learning_curves(
        records_as_inputs(records),
        [r.tag != SAFE_LABEL for r in records],
        start=args.start,
        step=args.step,
        seeds=range(args.seeds),
        config=config,
        orders=ORDERS if args.no_variants else (*ORDERS, *VARIANTS),
        jobs=args.jobs,
    )
    result = curves.summary()
    result.update(
        {
            "seeds": args.seeds,
            "start": args.start,
            "step": args.step,
            "model": config.name,
            "data": args.data.name,
            "seconds": round(time.perf_counter() - started, 1),
            "jobs": args.jobs,
        }
    )
    print(f"labels      {' '.join(f'{n:>5}' for n in result['labels'])}")
    print(f"arrival     {' '.join(f'{v:5.3f}' for v in result['arrival_median'])}")
    print(f"uncertainty {' '.join(f'{v:5.3f}' for v in result['uncertainty_median'])}")
    for order, variant in result["variants"].items():
        print(f"{order:<11} {' '.join(f'{v:5.3f}' for v in variant['median'])}   (ratio {variant['ratio']})")
    print(
        f"arrival reaches its final {result['arrival_final_accuracy']:.3f} at {result['labels_arrival']} labels, "
        f"uncertainty order at {result['labels_uncertainty']} (median of {args.seeds} seeds; locked fold "
        f"{result['n_locked']} items)"
    )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
