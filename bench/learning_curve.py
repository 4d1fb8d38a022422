"""Learning curve of stage 1 as reviewers work a queue over the KuaiMod dev records.

Start with 40 labels, retrain every 20, score binary accuracy on a locked fold after each retrain.
Repetitions: every one of 4 stratified folds (25 %) is locked in turn, × 5 seeds of arrival order =
20 curves per order, averaged before the ratio is read off; the ratio's spread is a paired bootstrap
over repetitions. Orders: arrival (the bare baseline) and the label-value orders of
``bench/_stage1_learning.py`` (uncertainty, committee, class-balanced, density; plus the
earlier batch-level variants), each ranking the pool with the product's own
``stage1.label_value`` code. The queue's order is chosen on seed 0's 4 repetitions; the numbers to
quote are seeds 1-4 (16 repetitions). Saves the result to --out (var/models/cascade/learning_curve.json by
default) and publishes it in media storage (models/cascade/learning_curve.json), where the dashboard reads it. Last line: one
JSON object, ``ratio`` first (the chosen queue order, held-out repetitions).

    .venv/bin/python bench/learning_curve.py [--data dev.jsonl] [--seeds 5] [--locked-folds 4] [--jobs 2]
    # the reported run, seeds 1-4: the queue's order as the product serves it (uncertainty) against arrival, and the
    # candidate bench/learning_screen.py picked on seeds 5-9 (density)
    .venv/bin/python bench/learning_curve.py --first-seed 1 --seeds 4 --orders density --queue-order uncertainty \
        --fit-noise 5 --jobs 2

Every order's last point is the whole pool, and a model is fitted on its labels in dataset order, so
orders that hold the same labels hold the same model (see ``_stage1_learning``). ``--fit-noise N`` also
fits each locked fold's whole pool N times with different inner splits: the noise every curve carries.

The model is stage 1's default stacked head; without ``--full`` its per-field C grid is (1, 4, 16)
with 3 inner folds (about 2x cheaper on this shared machine; the full setting is 4 C values, 5 folds).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# The helpers beside it, also when imported as ``bench.learning_curve``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KUAIMOD_DEV, ROOT, django_setup  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+N-1 (split a run over processes)")
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--step", type=int, default=20)
    parser.add_argument("--full", action="store_true", help="the full C grid and 5 inner folds")
    parser.add_argument("--jobs", type=int, default=1, help="processes for the independent (seed, order) curves")
    parser.add_argument("--locked-folds", type=int, default=4, help="each fold locked in turn (4 = 25 %%)")
    parser.add_argument(
        "--orders", default="all", help="comma-separated orders besides arrival,uncertainty; 'all' (default) or 'none'"
    )
    parser.add_argument(
        "--without-uncertainty",
        action="store_true",
        help="leave the queue's uncertainty order out (its curves are recorded and deterministic); needs --queue-order",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "var" / "models" / "cascade" / "learning_curve.json",
        help="for the dashboard",
    )
    parser.add_argument(
        "--queue-order",
        help="the queue's order, fixed before this run (chosen on other seeds); default: chosen on seed 0 of this run",
    )
    parser.add_argument(
        "--fit-noise",
        type=int,
        default=0,
        metavar="N",
        help="also fit each locked fold's whole pool N times with different inner splits (the fitting noise)",
    )
    parser.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        help="no simulation: rebuild the result from the 'curve …' lines of earlier runs' output (runs split by seed)",
    )
    args = parser.parse_args()
    django_setup()
    from _stage1_learning import ORDERS, VALUE_ORDERS, VARIANTS, simulate_learning_curves

    from moderation.inference.evaluation import records_as_inputs
    from moderation.inference.kuaimod import kuaimod_read
    from moderation.inference.stage1.model import Stage1Config
    from moderation.policies.seed import SAFE_LABEL

    if args.orders == "all":
        orders = (*ORDERS, *VARIANTS)
    elif args.orders == "none":
        orders = ORDERS
    else:
        orders = (*ORDERS, *[o for o in args.orders.split(",") if o and o not in ORDERS])
    if args.without_uncertainty:
        if not args.queue_order or args.queue_order == "uncertainty":
            parser.error("--without-uncertainty needs --queue-order naming another simulated order")
        orders = tuple(o for o in orders if o != "uncertainty")
    records = kuaimod_read(args.data).records
    config = Stage1Config() if args.full else Stage1Config(name="bench", stack_cs=(1.0, 4.0, 16.0), stack_folds=3)
    started = time.perf_counter()
    if args.merge:
        import numpy as np
        from _stage1_learning import curve_sizes, curves_from_progress, locked_splits

        y = np.array([r.tag != SAFE_LABEL for r in records], dtype=int)
        sizes = curve_sizes(locked_splits(y, args.locked_folds), args.start, args.step)
        lines = [line for path in args.merge for line in path.read_text(encoding="utf-8").splitlines()]
        curves = curves_from_progress(lines, sizes)
        curves.queue_order = args.queue_order
    else:
        curves = simulate_learning_curves(
            records_as_inputs(records),
            [r.tag != SAFE_LABEL for r in records],
            start=args.start,
            step=args.step,
            seeds=range(args.first_seed, args.first_seed + args.seeds),
            config=config,
            locked_folds=args.locked_folds,
            orders=orders,
            jobs=args.jobs,
            progress=lambda task, curve: print(f"curve {task}: {' '.join(f'{v:.3f}' for v in curve)}", flush=True),
            queue_order=args.queue_order,
        )
    result = curves.summary()
    if args.fit_noise > 1:
        from _stage1_learning import fit_noise

        result["fit_noise"] = fit_noise(
            records_as_inputs(records),
            [r.tag != SAFE_LABEL for r in records],
            locked_folds=args.locked_folds,
            config=config,
            fits=args.fit_noise,
        )
        print(f"fitting noise (same labels, {args.fit_noise} inner splits): {result['fit_noise']}")
    result.update(
        {
            "seeds": args.seeds,
            "locked_folds": args.locked_folds,
            "start": args.start,
            "step": args.step,
            "model": config.name,
            "data": args.data.name,
            "seconds": round(time.perf_counter() - started, 1),
            "jobs": args.jobs,
        }
    )
    print(f"{'labels':<22} {' '.join(f'{n:>5}' for n in result['labels'])}")
    print(f"{'arrival':<22} {' '.join(f'{v:5.3f}' for v in result['arrival_mean'])}")
    for order, row in result["orders"].items():
        spread = row["ratio_held_out_bootstrap"]
        gap = row["mean_accuracy_gap_vs_arrival"]
        print(
            f"{order:<22} {' '.join(f'{v:5.3f}' for v in row['mean_held_out'])}   ratio {row['ratio_held_out']} "
            f"(bootstrap median {spread['median']}, 95% {spread['ci95'][0]}-{spread['ci95'][1]}; tuning seed "
            f"{row['ratio_tuning']}; all {row['ratio_all']}); mean gap vs arrival {gap['mean']:+.4f} (se {gap['se']})"
        )
        per_seed = row["ratio_per_seed"]
        print(f"{'':<22} ratio per seed: {' '.join(f'{seed}: {v}' for seed, v in per_seed.items())}")
    print(
        f"queue order {'fixed before the run' if result['queue_order_pre_registered'] else 'chosen on seed 0'}: "
        f"{result['queue_order']} (product uses {result['queue_order_in_product']}); "
        f"held-out curves = mean of {result['repetitions_held_out']} repetitions; arrival reaches its final "
        f"{result['arrival_final_accuracy']:.3f} at {result['labels_arrival']} labels, the queue order at "
        f"{result['labels_queue_order']}"
    )
    if result["queue_order"] != result["queue_order_in_product"] and result["queue_order"] in VALUE_ORDERS:
        print(
            f"NOTE: the product's LABEL_VALUE_TERM is {result['queue_order_in_product']!r}, this run chose {result['queue_order']!r}"
        )
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    from moderation.inference.selectors import cascade_learning_curve_name
    from workbench.storage import artifact_store

    artifact_store(out, cascade_learning_curve_name())  # the web node draws it from media storage
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
