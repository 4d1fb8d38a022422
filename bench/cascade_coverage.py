"""How much traffic can the calibrated cascade auto-decide at a target accuracy? Nested CV over the KuaiMod dev records.

For R repeats of outer stratified 5-fold (the folds of ``evaluate --cv 5 --nested --seed S``), stage 1 is
chosen among ``CANDIDATES`` on each outer training part's inner folds (the product's ``choose_candidate``),
and two routing rules set their cut(s) on the chosen head's inner-fold (held-out) predictions only:

* ``symmetric`` (the product's): one confidence cut, max(p, 1 - p) >= c, the largest coverage whose inner
  accuracy reaches the target (``routing.threshold_for_target``);
* ``two-sided``: abstain on each side separately: auto-decide "safe" where p <= a and "violative" where
  p >= b, (a, b) the largest inner coverage whose accuracy reaches the target. Any monotone
  recalibration of p (isotonic, Platt, per-class) followed by one confidence cut is one such pair, so
  this is the most any recalibration of this scorer can cover.

Both are scored on the outer folds (share auto-decided, its accuracy). ``oracle`` is the two-sided pair
chosen on the outer predictions themselves (their labels read): an upper bound for any cut of this
scorer, not an estimate. Last line: one JSON object, ``ratio`` first = median outer coverage of
``two-sided`` ÷ that of ``symmetric`` at the target.

    .venv/bin/python bench/cascade_coverage.py [--repeats 3] [--target 0.92]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.cascade_coverage``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KUAIMOD_DEV, django_setup, kuaimod_binary  # noqa: E402


def two_sided_cut(p: Any, y: Any, target: float) -> tuple[float, float, int]:
    """(a, b, items covered): the pair of cuts (safe where p <= a, violative where p >= b) with the largest
    coverage whose accuracy reaches ``target``; (-1, 2, 0) when none does."""
    import numpy as np

    order = np.argsort(p, kind="stable")
    ps, ys = np.asarray(p)[order], np.asarray(y)[order]
    n = len(ps)
    safe_right = np.concatenate([[0], np.cumsum(ys == 0)])  # [i]: right among the i lowest
    violative_right = np.concatenate([[0], np.cumsum((ys == 1)[::-1])])  # [j]: right among the j highest
    best = (-1.0, 2.0, 0)
    for i in range(n + 1):
        j = np.arange(n - i + 1)
        total = i + j
        right = safe_right[i] + violative_right[j]
        ok = (total > 0) & (right >= target * total - 1e-9)
        if not ok.any():
            continue
        k = int(j[ok][np.argmax(total[ok])])
        if i + k > best[2]:
            best = (float(ps[i - 1]) if i else -1.0, float(ps[n - k]) if k else 2.0, i + k)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.92)
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.stage1.model import binary_head_fit
    from moderation.inference.stage1.routing import normalised_entropy, threshold_for_target
    from moderation.inference.stage1.selection import CANDIDATES, choose_candidate, stratified_splits

    records, items, y = kuaimod_binary(args.data)
    tags = [r.tag for r in records]
    started = time.perf_counter()
    per_seed: list[dict[str, Any]] = []
    for seed in range(args.repeats):
        p = np.zeros(len(y))
        auto = {"symmetric": np.zeros(len(y), dtype=bool), "two-sided": np.zeros(len(y), dtype=bool)}
        for train, test in stratified_splits(tags, args.folds, seed):
            heads = {c.name: binary_head_fit([items[i] for i in train], y[train], c, seed) for c in CANDIDATES}
            chosen = choose_candidate(
                {n: {"accuracy": h.held_out_accuracy, "log_loss": h.held_out_log_loss} for n, h in heads.items()}
            )
            head = heads[chosen]
            p[test] = head.predict_proba([items[i] for i in test])[:, 1]
            correct = (head.held_out_p > 0.5) == (head.held_out_y == 1)
            threshold = threshold_for_target(head.held_out_p, correct, args.target)
            auto["symmetric"][test] = normalised_entropy(p[test]) <= threshold  # the product: escalate above it
            a, b, _ = two_sided_cut(head.held_out_p, head.held_out_y, args.target)
            auto["two-sided"][test] = (p[test] <= a) | (p[test] >= b)
        right = (p > 0.5) == (y == 1)
        row: dict[str, Any] = {"seed": seed, "binary_accuracy": round(float(right.mean()), 4)}
        for name, mask in auto.items():
            row[name] = {
                "coverage": round(float(mask.mean()), 4),
                "accuracy": round(float(right[mask].mean()), 4) if mask.any() else None,
            }
        a, b, covered = two_sided_cut(p, y, args.target)
        row["oracle"] = {"coverage": round(covered / len(y), 4), "safe_cut": round(a, 4), "violative_cut": round(b, 4)}
        row["p_at_most_0.1"] = int((p <= 0.1).sum())
        row["p_at_least_0.9"] = int((p >= 0.9).sum())
        per_seed.append(row)
        print(json.dumps(row), flush=True)

    def median(key: str, field: str) -> float:
        return round(statistics.median(r[key][field] for r in per_seed if r[key][field] is not None), 4)

    result = {
        "ratio": round(median("two-sided", "coverage") / max(median("symmetric", "coverage"), 1e-9), 3),
        "target": args.target,
        "symmetric_coverage": median("symmetric", "coverage"),
        "symmetric_accuracy": median("symmetric", "accuracy"),
        "two_sided_coverage": median("two-sided", "coverage"),
        "two_sided_accuracy": median("two-sided", "accuracy"),
        "oracle_two_sided_coverage": median("oracle", "coverage"),
        "binary_accuracy": round(statistics.median(r["binary_accuracy"] for r in per_seed), 4),
        "per_seed": per_seed,
        "repeats": args.repeats,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
