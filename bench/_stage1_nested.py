"""Nested CV of stage-1 candidate arms, shared by the stage-1 benches (``stage1_candidates.py``; the closed
rounds' scripts used it too): every candidate's binary head fitted on each outer training part, each arm's
choice made on its inner folds only (``choose_candidate``, the rule stage 1 uses), scored on the outer folds.
"""

from __future__ import annotations

import statistics
from typing import Any


def fixed_accuracies(outer_p: dict[str, Any], y: Any) -> dict[str, float]:
    """Each fixed candidate's outer-fold binary accuracy, printed (reported beside the nested choice, never chosen
    from)."""
    fixed = {name: round(float(((p > 0.5) == (y == 1)).mean()), 4) for name, p in outer_p.items()}
    print("  fixed candidates: " + ", ".join(f"{k} {v:.3f}" for k, v in fixed.items()), flush=True)
    return fixed


def summary(values: list[float]) -> dict[str, Any]:
    """Median, range and per-seed values of one measure over the repeats."""
    return {"median": round(statistics.median(values), 4), "range": [min(values), max(values)], "per_seed": values}


def outer_fold(
    items: list[Any], y: Any, configs: list[Any], targets: Any, train: Any, seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, Any], dict[str, dict[float, float]]]:
    """Every candidate fitted on one outer training part: its inner-fold accuracy and log-loss, its
    P(violative) for every item (only the outer test part is read), and its cut for each of ``targets``."""
    inner, predict, thresholds, _heads = outer_fold_heads(items, y, configs, targets, train, seed)
    return inner, predict, thresholds


def outer_fold_heads(
    items: list[Any], y: Any, configs: list[Any], targets: Any, train: Any, seed: int
) -> tuple[dict[str, dict[str, float]], dict[str, Any], dict[str, dict[float, float]], list[Any]]:
    """``outer_fold`` and the fitted heads themselves (their inner held-out probabilities, for a bench that
    combines the candidates)."""
    from moderation.inference.stage1.model import binary_head_fit
    from moderation.inference.stage1.routing import threshold_for_target

    inner, predict, thresholds, heads = {}, {}, {}, []
    for config in configs:
        head = binary_head_fit([items[i] for i in train], y[train], config, seed)
        inner[config.name] = {"accuracy": head.held_out_accuracy, "log_loss": head.held_out_log_loss}
        predict[config.name] = head.predict_proba(items)[:, 1]
        correct = (head.held_out_p > 0.5) == (head.held_out_y == 1)
        thresholds[config.name] = {t: threshold_for_target(head.held_out_p, correct, t) for t in targets}
        heads.append(head)
    return inner, predict, thresholds, heads


def fit_outer_folds(
    items: list[Any], y: Any, configs: list[Any], targets: Any, tasks: list[Any], jobs: int
) -> list[Any]:
    """``outer_fold`` for every (repeat, outer fold) of ``tasks`` (independent: ``jobs`` processes)."""
    if jobs > 1:
        from joblib import Parallel, delayed

        return list(
            Parallel(n_jobs=jobs)(
                delayed(outer_fold)(items, y, configs, targets, train, seed) for seed, _, train, _ in tasks
            )
        )
    return [outer_fold(items, y, configs, targets, train, seed) for seed, _, train, _ in tasks]


def seed_row(
    seed: int, tasks: list[Any], runs: list[Any], arms: dict[str, list[str]], y: Any, targets: Any
) -> dict[str, Any]:
    """One repeat's nested result: per arm, the candidate its inner folds chose on each outer fold, the outer-fold
    binary accuracy of those choices, and the cascade at each target with the cut those inner folds set; plus
    every fixed candidate's outer accuracy (``fixed``, reported, never chosen from) and each arm's P(violative)
    (``p``)."""
    import numpy as np

    from moderation.inference.stage1.routing import normalised_entropy
    from moderation.inference.stage1.selection import choose_candidate

    n = len(y)
    outer_p: dict[str, Any] = {}
    arm_p = {arm: np.zeros(n) for arm in arms}
    arm_cut = {arm: {t: np.zeros(n) for t in targets} for arm in arms}
    chosen: dict[str, list[str]] = {arm: [] for arm in arms}
    for (task_seed, _, _, test), (inner, predict, thresholds) in zip(tasks, runs, strict=True):
        if task_seed != seed:
            continue
        for name in inner:
            outer_p.setdefault(name, np.zeros(n))[test] = predict[name][test]
        for arm, names in arms.items():
            name = choose_candidate({c: inner[c] for c in names})
            chosen[arm].append(name)
            arm_p[arm][test] = predict[name][test]
            for t in targets:
                arm_cut[arm][t][test] = thresholds[name][t]
    row: dict[str, Any] = {"seed": seed, "p": arm_p}
    for arm, p in arm_p.items():
        right = (p > 0.5) == (y == 1)
        cascade = {}
        for t in targets:
            auto = normalised_entropy(p) <= arm_cut[arm][t]
            cascade[str(t)] = {
                "auto_share": round(float(auto.mean()), 4),
                "auto_accuracy": round(float(right[auto].mean()), 4) if auto.any() else None,
            }
        row[arm] = {"binary_accuracy": round(float(right.mean()), 4), "cascade": cascade, "chosen": chosen[arm]}
    print(
        f"seed {seed}: "
        + "; ".join(f"{arm} {row[arm]['binary_accuracy']:.3f} (chose {','.join(chosen[arm])})" for arm in arms),
        flush=True,
    )
    row["fixed"] = fixed_accuracies(outer_p, y)
    return row


def nested_cv_arguments(parser: Any) -> None:
    """The options every nested-CV stage-1 bench takes: the data, the repetitions (seeds 0..n-1), the outer folds
    and the processes for the independent (repeat, outer fold) fits."""
    from pathlib import Path

    from _common import KUAIMOD_DEV

    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the independent (repeat, outer fold) fits")
