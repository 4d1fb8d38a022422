"""Is stage 1 short of data or at the ceiling of what the text says? A training-size curve on the KuaiMod dev records.

One fixed, pre-registered configuration (today's default ``Stage1Config``, no choice made anywhere, so no
selection bias): for R repeats of outer stratified K-fold (the folds of ``evaluate --cv K --nested --seed S``),
the binary head is fitted on a stratified share (25, 50, 75, 100 %) of each outer training part and scored
on the whole outer test fold. A curve still rising at 100 % says more labels help; a flat one says the
text carries no more. ``acc(n) = a + b·log2(n)`` is fitted to the per-share medians and extrapolated to
2× and 4× today's training size (a log-linear extrapolation is optimistic for a saturating curve).

    .venv/bin/python bench/stage1_ceiling.py [--repeats 3] [--folds 5] [--jobs N]

Last line: one JSON object, ``ratio`` first = median accuracy at 100 % of the training part ÷ at 50 %.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.stage1_ceiling``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KUAIMOD_DEV, django_setup, kuaimod_binary  # noqa: E402

SHARES = (0.25, 0.5, 0.75, 1.0)


def fit_and_score(items: list[Any], y: Any, train: Any, test: Any, share: float, seed: int) -> float:
    import numpy as np
    from sklearn.model_selection import train_test_split

    from moderation.inference.stage1.model import Stage1Config, binary_head_fit

    if share < 1.0:
        train, _ = train_test_split(train, train_size=share, stratify=y[train], random_state=seed)
    head = binary_head_fit([items[i] for i in train], y[train], Stage1Config(), seed)
    p = head.predict_proba([items[i] for i in test])[:, 1]
    return float(np.sum((p > 0.5) == (y[test] == 1)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.stage1.selection import stratified_splits

    records, items, y = kuaimod_binary(args.data)
    tags = [r.tag for r in records]
    started = time.perf_counter()
    tasks = [
        (seed, share, train, test)
        for seed in range(args.repeats)
        for train, test in stratified_splits(tags, args.folds, seed)
        for share in SHARES
    ]
    if args.jobs > 1:
        from joblib import Parallel, delayed

        right = Parallel(n_jobs=args.jobs)(
            delayed(fit_and_score)(items, y, train, test, share, seed) for seed, share, train, test in tasks
        )
    else:
        right = [fit_and_score(items, y, train, test, share, seed) for seed, share, train, test in tasks]
    # Accuracy per (repeat, share): every record is scored once per repeat and share.
    per: dict[float, list[float]] = {share: [] for share in SHARES}
    for seed in range(args.repeats):
        for share in SHARES:
            total = sum(r for (s, sh, _, _), r in zip(tasks, right, strict=True) if s == seed and sh == share)
            per[share].append(round(total / len(items), 4))
    train_size = len(items) * (args.folds - 1) / args.folds
    curve = []
    for share in SHARES:
        values = per[share]
        curve.append(
            {
                "share": share,
                "train_labels": round(train_size * share),
                "binary_accuracy": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
        )
        print(
            f"{round(train_size * share):4d} labels: accuracy {statistics.median(values):.3f} "
            f"(repeats {', '.join(f'{v:.3f}' for v in values)})",
            flush=True,
        )
    x = np.log2([row["train_labels"] for row in curve])
    slope, intercept = np.polyfit(x, [row["binary_accuracy"] for row in curve], 1)
    at = {f"{k}x": round(float(intercept + slope * np.log2(train_size * k)), 4) for k in (2, 4)}
    full, half = per[1.0], per[0.5]
    out = {
        "ratio": round(statistics.median(full) / statistics.median(half), 4),
        "accuracy_full": statistics.median(full),
        "accuracy_half": statistics.median(half),
        "gain_per_doubling": round(float(slope), 4),
        "extrapolated": at,
        "curve": curve,
        "repeats": args.repeats,
        "folds": args.folds,
        "n": len(items),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
