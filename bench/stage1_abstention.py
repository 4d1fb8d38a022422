"""Can a different abstention rule auto-decide more at .92 with today's stage-1 head? Nested CV over the KuaiMod dev records.

Round 6 of issue 15 (registered in bench/RESULTS.md before the run). The head is today's: chosen among
``CANDIDATES`` on each outer training part's inner folds (``choose_candidate``), so its predictions, and binary
accuracy, are ``evaluate --cv 5 --nested --seed S``'s. Only which items it auto-decides changes; every rule's
cut is set on the chosen head's inner-fold (held-out) predictions of the outer training part:

* ``text`` (the product's): one confidence cut, ``routing.threshold_for_target``.
* ``mondrian``: one cut per predicted class, each side's auto-decided items reaching the target on their own
  (``class_conditional_cuts``).
* ``rejector``: a logistic regression predicting "the decision is right" from the confidence, the predicted
  class, each field's held-out logit signed by the decision and the fields' lengths (``rejector_features``);
  its cut from its own cross-validated scores of the inner items (``score_cut``).

Rule (fixed before the run, bench/RESULTS.md "Round 6"): a rule is adopted only if at target .92 (a) its outer
coverage is above ``text``'s on at least 2 of the 3 seeds and its median at least .02 above, (b) its outer
auto-decided accuracy is below .92 on no more seeds than ``text``'s, (c) its median auto-decided accuracy is
at least .92.

    .venv/bin/python bench/stage1_abstention.py [--repeats 3] [--folds 5] [--jobs N] [--data FILE]

Last line: one JSON object, ``ratio`` first = the adopted (else the wider) rule's median coverage at .92 ÷
``text``'s.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.stage1_abstention``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import django_setup, kuaimod_binary  # noqa: E402
from _stage1_nested import nested_cv_arguments  # noqa: E402

RULE_TARGET = 0.92
ARMS = ("text", "mondrian", "rejector")
MIN_MEDIAN_GAIN = 0.02


def score_cut(score: Any, correct: Any, target: float) -> float:
    """The least ``score`` admitted at the largest coverage (highest scores first, ties together) whose accuracy
    reaches ``target``; +inf (nothing auto-decided) when none does."""
    import numpy as np

    s, right = np.asarray(score, dtype=float), np.asarray(correct, dtype=bool)
    order = np.argsort(-s, kind="stable")
    s, right = s[order], right[order]
    hits = np.cumsum(right)
    best = math.inf
    for k in range(len(s)):
        if k + 1 < len(s) and s[k + 1] == s[k]:
            continue
        if hits[k] >= target * (k + 1) - 1e-9:
            best = float(s[k])
    return best


def class_conditional_cuts(p: Any, y: Any, target: float) -> tuple[float, float]:
    """(a, b): auto-decide "safe" where p <= a (a <= .5) and "violative" where p >= b (b > .5), each side the
    largest coverage whose own accuracy reaches ``target``; a = -inf / b = +inf when a side has none."""
    import numpy as np

    p, y = np.asarray(p, dtype=float), np.asarray(y, dtype=int)
    safe = p <= 0.5
    a = -score_cut(-p[safe], y[safe] == 0, target) if safe.any() else -math.inf
    b = score_cut(p[~safe], y[~safe] == 1, target) if (~safe).any() else math.inf
    return a, b


def rejector_features(p: Any, field_logits: Any, lengths: Any) -> Any:
    """Per item: |logit p|, predicted class, each field's logit signed by the decision (+ agrees), the lengths."""
    import numpy as np

    p = np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6)
    logit = np.log(p / (1 - p))
    sign = np.where(p > 0.5, 1.0, -1.0)
    return np.column_stack([np.abs(logit), (p > 0.5).astype(float), field_logits * sign[:, None], lengths])


def item_lengths(items: list[Any]) -> Any:
    import numpy as np

    from moderation.inference.stage1.model import field_texts

    columns = [[len(t) for t in field_texts(items, name)] for name in ("title", "ocr", "asr")]
    columns.append([len(t.split()) for t in field_texts(items, "hashtags")])
    return np.log1p(np.array(columns, dtype=float).T)


def recording_head_fit(items: list[Any], y: Any, config: Any, seed: int) -> Any:
    """``model.binary_head_fit`` with a head that keeps its fields' held-out logits (``held_out_columns``, in
    ``kept`` order): the rejector reads them for the training items, ``scores`` for new ones."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    from moderation.inference.stage1.model import BinaryHead

    class RecordingHead(BinaryHead):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.held_out_columns: list[Any] = []

        def _held_out_scores(self, group: Any, items: Any, y: Any, splits: Any) -> tuple[float, Any]:
            c, scores = super()._held_out_scores(group, items, y, splits)
            self.held_out_columns.append(scores)
            return c, scores

    n_violative = int(y.sum())
    folds = min(config.stack_folds, n_violative, len(y) - n_violative)
    splits = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return RecordingHead(config, seed).fit(items, y, splits)


def outer_fold(
    items: list[Any], y: Any, lengths: Any, train: Any, test: Any, seed: int, targets: Any
) -> dict[str, Any]:
    """Every candidate fitted on ``train``, one chosen on its inner folds; per rule and target, which ``test``
    items are auto-decided; and the test items' P(violative) and rejector score."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    from moderation.inference.stage1.routing import normalised_entropy, threshold_for_target
    from moderation.inference.stage1.selection import CANDIDATES, choose_candidate

    train_items = [items[i] for i in train]
    test_items = [items[i] for i in test]
    heads = {c.name: recording_head_fit(train_items, y[train], c, seed) for c in CANDIDATES}
    chosen = choose_candidate(
        {n: {"accuracy": h.held_out_accuracy, "log_loss": h.held_out_log_loss} for n, h in heads.items()}
    )
    head = heads[chosen]
    with threadpool_limits(limits=1):
        p = head.predict_proba(test_items)[:, 1]
        test_fields = head.scores(test_items)
        held_p, held_y = head.held_out_p, head.held_out_y
        held_right = (held_p > 0.5) == (held_y == 1)
        x_held = rejector_features(held_p, np.column_stack(head.held_out_columns), lengths[train])
        x_test = rejector_features(p, test_fields, lengths[test])
        rejector = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        inner = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        r_held = cross_val_predict(rejector, x_held, held_right, cv=inner, method="predict_proba")[:, 1]
        r_test = rejector.fit(x_held, held_right).predict_proba(x_test)[:, 1]
    auto: dict[str, dict[str, Any]] = {arm: {} for arm in ARMS}
    for t in targets:
        auto["text"][str(t)] = normalised_entropy(p) <= threshold_for_target(held_p, held_right, t)
        a, b = class_conditional_cuts(held_p, held_y, t)
        auto["mondrian"][str(t)] = (p <= a) | (p >= b)
        auto["rejector"][str(t)] = r_test >= score_cut(r_held, held_right, t)
    return {"seed": seed, "test": test, "chosen": chosen, "p": p, "r": r_test, "auto": auto}


def main() -> None:
    parser = argparse.ArgumentParser()
    nested_cv_arguments(parser)
    args = parser.parse_args()
    django_setup()
    import numpy as np

    from moderation.inference.stage1.selection import REPORT_TARGETS, stratified_splits

    records, items, y = kuaimod_binary(args.data)
    tags = [r.tag for r in records]
    lengths = item_lengths(items)
    targets = REPORT_TARGETS
    started = time.perf_counter()
    tasks = [
        (seed, train, test) for seed in range(args.repeats) for train, test in stratified_splits(tags, args.folds, seed)
    ]
    if args.jobs > 1:
        from joblib import Parallel, delayed

        runs = list(
            Parallel(n_jobs=args.jobs)(
                delayed(outer_fold)(items, y, lengths, train, test, seed, targets) for seed, train, test in tasks
            )
        )
    else:
        runs = [outer_fold(items, y, lengths, train, test, seed, targets) for seed, train, test in tasks]

    n = len(y)
    per_seed: list[dict[str, Any]] = []
    for seed in range(args.repeats):
        p, r = np.zeros(n), np.zeros(n)
        auto = {arm: {str(t): np.zeros(n, dtype=bool) for t in targets} for arm in ARMS}
        chosen = []
        for run in runs:
            if run["seed"] != seed:
                continue
            p[run["test"]], r[run["test"]] = run["p"], run["r"]
            chosen.append(run["chosen"])
            for arm in ARMS:
                for t in targets:
                    auto[arm][str(t)][run["test"]] = run["auto"][arm][str(t)]
        right = (p > 0.5) == (y == 1)
        row: dict[str, Any] = {"seed": seed, "binary_accuracy": round(float(right.mean()), 4), "chosen": chosen}
        for arm in ARMS:
            row[arm] = {
                str(t): {
                    "share": round(float(mask.mean()), 4),
                    "accuracy": round(float(right[mask].mean()), 4) if mask.any() else None,
                }
                for t, mask in auto[arm].items()
            }
        confidence = np.maximum(p, 1 - p)
        row["oracle_at_092"] = {
            "confidence": round(float((confidence >= score_cut(confidence, right, RULE_TARGET)).mean()), 4),
            "rejector": round(float((r >= score_cut(r, right, RULE_TARGET)).mean()), 4),
        }
        per_seed.append(row)
        print(json.dumps(row), flush=True)

    def at(arm: str, key: str, target: float = RULE_TARGET) -> list[float]:
        """Per seed; an accuracy is left out where nothing was auto-decided (no decision, none wrong)."""
        values = [row[arm][str(target)][key] for row in per_seed]
        return [v for v in values if v is not None]

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 4) if values else None

    def below_target(arm: str) -> int:
        return sum(a < RULE_TARGET for a in at(arm, "accuracy"))

    text_share, text_below = at("text", "share"), below_target("text")
    verdict: dict[str, Any] = {}
    for arm in ("mondrian", "rejector"):
        share, accuracy = at(arm, "share"), at(arm, "accuracy")
        wider = sum(s > ts for s, ts in zip(share, text_share, strict=True))
        gain = statistics.median(share) - statistics.median(text_share)
        verdict[arm] = {
            "a_wider_seeds": wider,
            "a_median_gain": round(gain, 4),
            "b_below_target_seeds": below_target(arm),
            "c_median_accuracy": median(accuracy),
            "passes": wider >= 2
            and gain >= MIN_MEDIAN_GAIN - 1e-9
            and below_target(arm) <= text_below
            and bool(accuracy)
            and statistics.median(accuracy) >= RULE_TARGET,
        }
    passing = [arm for arm in verdict if verdict[arm]["passes"]]
    wider_first = sorted(("mondrian", "rejector"), key=lambda arm: -statistics.median(at(arm, "share")))
    adopted = next((arm for arm in wider_first if arm in passing), None)
    shown = adopted or wider_first[0]
    out = {
        "ratio": round(statistics.median(at(shown, "share")) / max(statistics.median(text_share), 1e-9), 4),
        "ratio_arm": shown,
        "adopted": adopted,
        "verdict": verdict,
        "text_below_target_seeds": text_below,
        "arms": {
            arm: {
                str(t): {
                    "share": {"median": median(at(arm, "share", t)), "per_seed": at(arm, "share", t)},
                    "accuracy": {"median": median(at(arm, "accuracy", t)), "per_seed": at(arm, "accuracy", t)},
                }
                for t in targets
            }
            for arm in ARMS
        },
        "binary_accuracy": [row["binary_accuracy"] for row in per_seed],
        "oracle_at_092": [row["oracle_at_092"] for row in per_seed],
        "seconds": round(time.perf_counter() - started, 1),
        "jobs": args.jobs,
        "repeats": args.repeats,
        "folds": args.folds,
        "n": n,
        "data": args.data.name,
    }
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
