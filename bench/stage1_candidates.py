"""Do three pre-registered feature/learner changes earn a place in stage 1? Nested CV over the KuaiMod dev records.

``feature_candidates()`` (character 2-4-grams, n-grams across segment boundaries, no class weights in the
field models) were written down before any of them was run (they were ``selection.FEATURE_CANDIDATES``
when measured; not adopted, bench/RESULTS.md, "Stage 1"). For R repeats of outer
stratified K-fold (the folds of ``evaluate --cv K --nested --seed S``), every candidate's binary head is
fitted on each outer training part and two selections are made on its inner folds only
(``choose_candidate``, the rule stage 1 uses):

* ``text``: among ``CANDIDATES`` (today's stage 1; reproduces ``evaluate --nested``'s binary accuracy);
* ``text+features``: among ``CANDIDATES`` and ``feature_candidates()``.

Both are scored on the outer folds (binary accuracy pooled per repeat; the cascade at each of
``REPORT_TARGETS`` with the cut from the chosen head's inner folds). Each fixed candidate's outer
accuracy is printed for information only (plain CV of a pre-registered configuration, no choice).
A change is adopted only if ``text+features`` beats ``text`` on every repeat.

    .venv/bin/python bench/stage1_candidates.py [--repeats 3] [--folds 5] [--jobs N]

Last line: one JSON object, ``ratio`` first = median accuracy of ``text+features`` ÷ median of ``text``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.stage1_candidates``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, kuaimod_binary  # noqa: E402
from _stage1_nested import fit_outer_folds, nested_cv_arguments, seed_row, summary  # noqa: E402


def feature_candidates() -> tuple[Any, ...]:
    """Three feature/learner changes a reviewer of Chinese text would try first, set before any of them was
    run under nested CV; each a ``Stage1Config`` beside ``selection.CANDIDATES``."""
    from moderation.inference.stage1.model import Stage1Config

    return (
        # Chinese words are mostly 2-4 characters: bi- to 4-grams instead of uni- and bigrams.
        Stage1Config(name="stacked-char24", ngram_range=(2, 4)),
        # n-grams across the spaces and line breaks between OCR lines / speech segments too.
        Stage1Config(name="stacked-char13-across", ngram_range=(1, 3), analyzer="char"),
        # No class weights in the field models (the meta-learner calibrates either way).
        Stage1Config(name="stacked-char12-unweighted", class_weight=None),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    nested_cv_arguments(parser)
    args = parser.parse_args()
    django_setup()

    from moderation.inference.stage1.selection import CANDIDATES, REPORT_TARGETS, stratified_splits

    records, items, y = kuaimod_binary(args.data)
    tags = [r.tag for r in records]
    features = feature_candidates()
    arms = {"text": [c.name for c in CANDIDATES], "text+features": [c.name for c in (*CANDIDATES, *features)]}
    configs = [*CANDIDATES, *features]
    started = time.perf_counter()
    tasks = [
        (seed, k, train, test)
        for seed in range(args.repeats)
        for k, (train, test) in enumerate(stratified_splits(tags, args.folds, seed))
    ]
    # One fit per (repeat, fold, candidate); the cut for every target comes from the same inner folds.
    runs = fit_outer_folds(items, y, configs, REPORT_TARGETS, tasks, args.jobs)
    per_repeat: list[dict[str, Any]] = []
    for seed in range(args.repeats):
        row = seed_row(seed, tasks, runs, arms, y, REPORT_TARGETS)
        del row["p"]
        per_repeat.append(row)

    result: dict[str, Any] = {}
    for arm in arms:
        result[arm] = {
            "binary_accuracy": summary([r[arm]["binary_accuracy"] for r in per_repeat]),
            "cascade": {
                str(t): {
                    "auto_share": summary([r[arm]["cascade"][str(t)]["auto_share"] for r in per_repeat]),
                    "auto_accuracy": summary(
                        [
                            r[arm]["cascade"][str(t)]["auto_accuracy"]
                            for r in per_repeat
                            if r[arm]["cascade"][str(t)]["auto_accuracy"] is not None
                        ]
                        or [0.0]
                    ),
                }
                for t in REPORT_TARGETS
            },
            "chosen": [c for r in per_repeat for c in r[arm]["chosen"]],
        }
    paired = [round(r["text+features"]["binary_accuracy"] - r["text"]["binary_accuracy"], 4) for r in per_repeat]
    out = {
        "ratio": round(
            result["text+features"]["binary_accuracy"]["median"] / result["text"]["binary_accuracy"]["median"], 4
        ),
        "binary_accuracy_text": result["text"]["binary_accuracy"],
        "binary_accuracy_text_features": result["text+features"]["binary_accuracy"],
        "paired_difference_per_seed": paired,
        "supported": all(d > 0 for d in paired),
        "arms": result,
        "fixed_candidates": {c.name: summary([r["fixed"][c.name] for r in per_repeat]) for c in configs},
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "folds": args.folds,
        "n": len(items),
        "data": args.data.name,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
