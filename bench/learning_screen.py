"""Screen of queue orders for ``bench/learning_curve.py``, on a fast stand-in model and seeds that are never reported.

The reported bench fits stage 1's own stacked head (~1 min per curve here); screening nine orders on it
would cost hours. This screen fits a stand-in with the same shape (per-field character TF-IDF logistic
regressions, class-balanced, C = 4, stacked by a logistic regression over 3-fold held-out scores) on
vocabularies fitted once over all records, ~10x cheaper, and runs the learning-curve protocol of
``_stage1_learning`` (4 locked folds in turn, start 40, retrain every 20, the whole pool at the last point,
each model fitted on its labels in dataset order) on seeds 5-9 (20 repetitions). The queue's order for the
reported run (seeds 1-4) is the one with the lowest ratio here, ties to the larger mean accuracy over the
curve (the rule of ``LearningCurves.chosen``). Orders:

* ``arrival``; ``uncertainty`` (normalised entropy); ``class-balanced``; ``density`` (uncertainty × cosine
  similarity to the pool's mean TF-IDF vector): the per-item terms of ``_stage1_learning``;
* ``clustered`` (k-means of the pool into one cluster per label of the batch, most uncertain per cluster);
  ``uncertainty+diversity`` (k-means over the 3× most uncertain): batch orders;
* ``errors-first``: reads the pool's labels (the items the model gets wrong first): a bound, not a candidate.

    .venv/bin/python bench/learning_screen.py [--seeds 5,6,7,8,9] [--orders ...]

Last line: one JSON object, ``ratio`` first = the chosen order's ratio, then every order's ratio and curve.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# The helpers beside it, also when imported as ``bench.learning_screen``.
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KUAIMOD_DEV, django_setup  # noqa: E402

SCREENED = ("uncertainty", "class-balanced", "density", "clustered", "uncertainty+diversity", "errors-first")
CANDIDATES = ("uncertainty", "class-balanced", "density", "clustered", "uncertainty+diversity")


def main() -> None:  # noqa: C901, PLR0915 (one screen, read top to bottom)
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, default=KUAIMOD_DEV)
    parser.add_argument("--seeds", default="5,6,7,8,9")
    parser.add_argument("--orders", default=",".join(SCREENED))
    args = parser.parse_args()
    django_setup()
    import numpy as np
    from _stage1_learning import LearningCurves, class_balanced_term, curve_sizes, density_term, locked_splits
    from scipy import sparse
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import normalize
    from threadpoolctl import threadpool_limits

    from moderation.inference.evaluation import records_as_inputs
    from moderation.inference.kuaimod import kuaimod_read
    from moderation.inference.stage1.label_value import uncertainty_term
    from moderation.inference.stage1.model import FIELDS, field_texts
    from moderation.policies.seed import SAFE_LABEL

    warnings.filterwarnings("ignore")
    records = kuaimod_read(args.data).records
    items = records_as_inputs(records)
    y = np.array([r.tag != SAFE_LABEL for r in records], dtype=int)
    blocks = []
    for name in FIELDS:
        if name == "hashtags":
            vectorizer = TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", min_df=2)  # noqa: S106
        else:
            vectorizer = TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(1, 2), min_df=2)
        blocks.append(vectorizer.fit_transform(field_texts(items, name)).tocsr())
    every = normalize(sparse.hstack(blocks).tocsr())

    def fit(labelled: list[int]) -> Any:
        index = np.sort(np.asarray(labelled))
        yl = y[index]
        splits = list(StratifiedKFold(3, shuffle=True, random_state=0).split(index, yl))
        columns, models = [], []
        for x in blocks:
            xs, held_out = x[index], np.zeros(len(index))
            for train, test in splits:
                model = LogisticRegression(C=4, class_weight="balanced", max_iter=2000).fit(xs[train], yl[train])
                held_out[test] = model.decision_function(xs[test])
            columns.append(held_out)
            models.append(LogisticRegression(C=4, class_weight="balanced", max_iter=2000).fit(xs, yl))
        meta = LogisticRegression().fit(np.column_stack(columns), yl)
        return lambda rows: meta.predict_proba(
            np.column_stack([m.decision_function(x[rows]) for m, x in zip(models, blocks, strict=True)])
        )[:, 1]

    def pick(order: str, proba: Any, labelled: list[int], remaining: list[int], take: int, seed: int) -> list[int]:
        rows = np.asarray(remaining)
        p = proba(rows)
        u = uncertainty_term(p)
        ranked = np.argsort(-u, kind="stable")
        if order == "uncertainty":
            return ranked[:take].tolist()
        if order == "class-balanced":
            return np.argsort(-class_balanced_term(p, float(y[labelled].mean())), kind="stable")[:take].tolist()
        if order == "density":
            x = every[rows]
            similarity = np.asarray(x @ np.asarray(x.mean(axis=0)).ravel()).ravel()
            return np.argsort(-density_term(p, similarity), kind="stable")[:take].tolist()
        if order == "errors-first":
            wrong = (p > 0.5) != (y[rows] == 1)
            return np.argsort(-(wrong * 2.0 + u), kind="stable")[:take].tolist()
        if order in ("clustered", "uncertainty+diversity"):
            shortlist = np.arange(len(rows)) if order == "clustered" else ranked[: 3 * take]
            clusters = KMeans(take, n_init=3, random_state=seed).fit_predict(every[rows[shortlist]])
            chosen = []
            for cluster in range(take):
                members = shortlist[clusters == cluster]
                if len(members):
                    chosen.append(int(members[np.argmax(u[members])]))
            return chosen + [int(k) for k in ranked if k not in chosen][: take - len(chosen)]
        raise ValueError(order)

    splits = locked_splits(y, 4)
    sizes = curve_sizes(splits, 40, 20)
    orders = ["arrival", *[o for o in args.orders.split(",") if o and o != "arrival"]]
    seeds = [int(s) for s in args.seeds.split(",")]
    repetitions = [(seed, fold) for seed in seeds for fold in range(len(splits))]
    curves: dict[str, list[list[float]]] = {order: [] for order in orders}
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        for seed, fold in repetitions:
            pool, locked = splits[fold]
            arrival = np.random.default_rng(seed).permutation(pool)
            for order in orders:
                labelled, remaining, curve = list(arrival[:40]), list(arrival[40:]), []
                for size in sizes:
                    if size == sizes[-1]:
                        labelled, remaining = labelled + remaining, []
                    proba = fit(labelled)
                    curve.append(float(np.mean((proba(locked) > 0.5) == (y[locked] == 1))))
                    take = min(size + 20, sizes[-1]) - len(labelled) if size != sizes[-1] else 0
                    if take <= 0:
                        continue
                    if order == "arrival":
                        labelled, remaining = labelled + remaining[:take], remaining[take:]
                        continue
                    chosen = set(pick(order, proba, labelled, remaining, take, seed))
                    labelled += [remaining[k] for k in sorted(chosen)]
                    remaining = [r for k, r in enumerate(remaining) if k not in chosen]
                curves[order].append(curve)
                print(f"curve ({seed}, {fold}, '{order}'): {' '.join(f'{v:.3f}' for v in curve)}", flush=True)
    result = LearningCurves(
        labels=sizes, curves=curves, n_locked=[0] * len(repetitions), repetitions=repetitions, tuning_seeds=()
    )
    everything = result.select("all")
    ratios = {o: result.ratio(o, everything) for o in orders if o != "arrival"}
    gaps = {o: result.gap(o, everything)["mean"] for o in ratios}
    candidates = [o for o in CANDIDATES if o in ratios]
    chosen = min(candidates, key=lambda o: (ratios[o], -gaps[o]))
    for order in orders:
        extra = "" if order == "arrival" else f"  ratio {ratios[order]}  mean gap {gaps[order]:+.4f}"
        print(f"{order:<22} {' '.join(f'{v:.3f}' for v in result.mean(order))}{extra}")
    print(f"chosen for the reported run: {chosen}")
    out = {
        "ratio": ratios[chosen],
        "chosen": chosen,
        "ratios": ratios,
        "mean_gap_vs_arrival": gaps,
        "bootstrap": {o: result.ratio_spread(o, everything) for o in ratios},
        "labels": sizes,
        "mean": {o: [round(v, 4) for v in result.mean(o)] for o in orders},
        "seeds": seeds,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
