"""Does serving stage 1 the way its cut was set, or a label-free cut, auto-decide more at .92? Nested CV, KuaiMod dev.

Round 8 of issue 15 (registered in bench/RESULTS.md before the run). The head is today's: chosen among
``CANDIDATES`` on each outer training part's inner folds (``choose_candidate``), its held-out evidence, and so its
choice and the cascade's cut, unchanged. Three arms on the same outer folds:

* ``text`` (the product's): the refitted field models score new items (``serving="refit"``); one confidence cut
  set on the head's inner held-out predictions (``routing.threshold_for_target``).
* ``crossfit``: new items scored by the mean logit of each field's inner-fold models (``serving="cross-fit"``),
  the kind of score the meta-learner and the cut were fitted on; the same cut as ``text``.
* ``plugin``: ``text``'s predictions; the cut is label-free, set on the outer fold's own predictions (the traffic,
  labels unread): the most confident items, as many as keep their mean calibrated confidence at or above the
  target (``plugin_mask``).

Rule (fixed before the run, bench/RESULTS.md "Round 8"): see there; ``verdict`` in the last line applies it.

    .venv/bin/python bench/stage1_crossfit.py --first-seed 20 [--repeats 3] [--folds 5] [--jobs N] [--data FILE]

Last line: one JSON object, ``ratio`` first = the adopted (else the wider) arm's median coverage at .92 ÷ ``text``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.stage1_crossfit``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, kuaimod_binary  # noqa: E402
from _stage1_nested import nested_cv_arguments  # noqa: E402

RULE_TARGET = 0.92
ARMS = ("text", "crossfit", "plugin")
MIN_MEDIAN_GAIN = 0.02
MAX_MEDIAN_LOSS = 0.01
MIN_BINARY_DIFF = -0.005


def plugin_mask(p: Any, target: float) -> Any:
    """Auto-decide the most confident items (ties together), as many as keep the mean of their calibrated
    confidence max(p, 1 - p) at or above ``target``; labels are not read."""
    import numpy as np

    conf = np.maximum(np.asarray(p, dtype=float), 1 - np.asarray(p, dtype=float))
    order = np.argsort(-conf, kind="stable")
    sorted_conf = conf[order]
    means = np.cumsum(sorted_conf) / np.arange(1, len(conf) + 1)
    least = np.inf
    for k in range(len(conf)):
        if k + 1 < len(conf) and sorted_conf[k + 1] == sorted_conf[k]:
            continue
        if means[k] >= target - 1e-12:
            least = float(sorted_conf[k])
    return conf >= least


def outer_fold(items: list[Any], y: Any, train: Any, test: Any, seed: int, targets: Any) -> dict[str, Any]:
    """Every candidate fitted (with its fold models kept) on ``train``, one chosen on its inner folds; the test
    items' P(violative) under both servings, and each target's cut from the chosen head's held-out evidence."""
    import numpy as np
    from threadpoolctl import threadpool_limits

    from moderation.inference.stage1.model import binary_head_fit
    from moderation.inference.stage1.routing import threshold_for_target
    from moderation.inference.stage1.selection import CANDIDATES, choose_candidate

    train_items = [items[i] for i in train]
    test_items = [items[i] for i in test]
    heads = {
        c.name: binary_head_fit(train_items, y[train], dataclasses.replace(c, serving="cross-fit"), seed)
        for c in CANDIDATES
    }
    chosen = choose_candidate(
        {n: {"accuracy": h.held_out_accuracy, "log_loss": h.held_out_log_loss} for n, h in heads.items()}
    )
    head = heads[chosen]
    with threadpool_limits(limits=1):
        p_refit = head.meta.predict_proba(head.refit_scores(test_items))[:, 1]
        p_cross = head.meta.predict_proba(head.cross_fit_scores(test_items))[:, 1]
    held_right = (head.held_out_p > 0.5) == (head.held_out_y == 1)
    cuts = {str(t): threshold_for_target(head.held_out_p, held_right, t) for t in targets}
    return {
        "seed": seed,
        "test": test,
        "chosen": chosen,
        "p": {"text": p_refit, "crossfit": p_cross},
        "cuts": cuts,
        "held_out_confidence": float(np.maximum(head.held_out_p, 1 - head.held_out_p).mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    nested_cv_arguments(parser)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+repeats-1")
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.stage1.routing import normalised_entropy
    from moderation.inference.stage1.selection import REPORT_TARGETS, stratified_splits

    records, items, y = kuaimod_binary(args.data)
    tags = [r.tag for r in records]
    targets = REPORT_TARGETS
    seeds = list(range(args.first_seed, args.first_seed + args.repeats))
    started = time.perf_counter()
    tasks = [(seed, train, test) for seed in seeds for train, test in stratified_splits(tags, args.folds, seed)]
    if args.jobs > 1:
        from joblib import Parallel, delayed

        runs = list(
            Parallel(n_jobs=args.jobs)(
                delayed(outer_fold)(items, y, train, test, seed, targets) for seed, train, test in tasks
            )
        )
    else:
        runs = [outer_fold(items, y, train, test, seed, targets) for seed, train, test in tasks]

    n = len(y)
    per_seed: list[dict[str, Any]] = []
    for seed in seeds:
        p = {"text": np.zeros(n), "crossfit": np.zeros(n)}
        cut = {str(t): np.zeros(n) for t in targets}
        auto = {arm: {str(t): np.zeros(n, dtype=bool) for t in targets} for arm in ARMS}
        chosen, held_conf = [], []
        for run in runs:
            if run["seed"] != seed:
                continue
            test = run["test"]
            for arm in ("text", "crossfit"):
                p[arm][test] = run["p"][arm]
            for t in targets:
                cut[str(t)][test] = run["cuts"][str(t)]
                auto["plugin"][str(t)][test] = plugin_mask(run["p"]["text"], t)
            chosen.append(run["chosen"])
            held_conf.append(run["held_out_confidence"])
        for arm in ("text", "crossfit"):
            for t in targets:
                auto[arm][str(t)] = normalised_entropy(p[arm]) <= cut[str(t)]
        arm_p = {"text": p["text"], "crossfit": p["crossfit"], "plugin": p["text"]}
        row: dict[str, Any] = {"seed": seed, "chosen": chosen}
        for arm in ARMS:
            right = (arm_p[arm] > 0.5) == (y == 1)
            row[arm] = {
                "binary_accuracy": round(float(right.mean()), 4),
                "cascade": {
                    str(t): {
                        "share": round(float(mask.mean()), 4),
                        "accuracy": round(float(right[mask].mean()), 4) if mask.any() else None,
                    }
                    for t, mask in auto[arm].items()
                },
            }
        row["mean_confidence"] = {
            "held_out": round(float(np.mean(held_conf)), 4),
            "text": round(float(np.maximum(p["text"], 1 - p["text"]).mean()), 4),
            "crossfit": round(float(np.maximum(p["crossfit"], 1 - p["crossfit"]).mean()), 4),
        }
        per_seed.append(row)
        print(json.dumps(row), flush=True)

    def at(arm: str, key: str, target: float = RULE_TARGET) -> list[Any]:
        return [row[arm]["cascade"][str(target)][key] for row in per_seed]

    def median(values: list[Any]) -> float | None:
        kept = [v for v in values if v is not None]
        return round(statistics.median(kept), 4) if kept else None

    def below(arm: str) -> int:
        return sum(a is not None and a < RULE_TARGET for a in at(arm, "accuracy"))

    text_share = at("text", "share")
    text_binary = [row["text"]["binary_accuracy"] for row in per_seed]
    verdict: dict[str, Any] = {}
    for arm in ("crossfit", "plugin"):
        share = at(arm, "share")
        gain = statistics.median(share) - statistics.median(text_share)
        binary = [row[arm]["binary_accuracy"] for row in per_seed]
        diffs = [b - tb for b, tb in zip(binary, text_binary, strict=True)]
        acc = median(at(arm, "accuracy"))
        a_ok = gain >= -MAX_MEDIAN_LOSS - 1e-9
        b_ok = below(arm) < below("text") or (below(arm) == below("text") and gain >= MIN_MEDIAN_GAIN - 1e-9)
        c_ok = acc is not None and acc >= RULE_TARGET
        d_ok = sum(d < 0 for d in diffs) <= 1 and statistics.median(diffs) >= MIN_BINARY_DIFF - 1e-9
        verdict[arm] = {
            "a_median_share_gain": round(gain, 4),
            "b_below_target_seeds": below(arm),
            "c_median_accuracy": acc,
            "d_binary_diffs": [round(d, 4) for d in diffs],
            "passes": a_ok and b_ok and c_ok and d_ok,
        }
    passing = [arm for arm in verdict if verdict[arm]["passes"]]
    wider_first = sorted(("crossfit", "plugin"), key=lambda arm: -statistics.median(at(arm, "share")))
    adopted = next((arm for arm in wider_first if arm in passing), None)
    shown = adopted or wider_first[0]
    out = {
        "ratio": round(statistics.median(at(shown, "share")) / max(statistics.median(text_share), 1e-9), 4),
        "ratio_arm": shown,
        "adopted": adopted,
        "verdict": verdict,
        "text_below_target_seeds": below("text"),
        "arms": {
            arm: {
                "binary_accuracy": [row[arm]["binary_accuracy"] for row in per_seed],
                **{
                    str(t): {
                        "share": {"median": median(at(arm, "share", t)), "per_seed": at(arm, "share", t)},
                        "accuracy": {"median": median(at(arm, "accuracy", t)), "per_seed": at(arm, "accuracy", t)},
                    }
                    for t in targets
                },
            }
            for arm in ARMS
        },
        "seeds": seeds,
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": args.jobs,
        "folds": args.folds,
        "n": n,
        "data": args.data.name,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
