"""A queue that learns, simulated: reviewers label items in the order a queue serves them, stage 1
retrains every ``step`` labels, and its binary accuracy is scored on a locked fold after each retrain.

One repetition = one locked fold (the data split into ``locked_folds`` stratified folds, each locked
in turn: 4 folds = the issue's locked 25 %) × one seed (the arrival order of the rest, the pool).
Every order in a repetition starts from the same first ``start`` labels. Curves are averaged over
repetitions before the ratio is read off, and the ratio's spread is a bootstrap over repetitions
(paired: the same resampled repetitions for an order and for arrival).

Orders. ``arrival`` (first come, first served: the baseline). The label-value orders rank the pool by
``stage1.label_value.label_value`` of a per-item stage-1 term (the product's own code, the rule
``ReviewQueue.order_by_label_value`` serves by) and take the top of ``label_value_order``; the terms
other than ``uncertainty`` (the product's) are defined here, none was adopted:

* ``uncertainty``: normalised entropy of the calibrated P(violative) (the queue's term before this
  comparison);
* ``committee``: query by committee: ``COMMITTEE_SIZE`` bootstrap replicates of one logistic
  regression (C = ``COMMITTEE_C``, class-balanced) over the head's own TF-IDF columns, disagreement =
  mean KL divergence from the committee mean;
* ``class-balanced``: uncertainty × the ``balanced`` weight of the predicted class under the labelled
  set's class shares (margin with a class-balance correction);
* ``density``: uncertainty × mean cosine similarity to the unlabelled pool in the head's TF-IDF space
  (information density, β = 1).

Batch-level variants (``BATCH_ORDERS``, not per-item queue orders): ``uncertainty+arrival`` (half the
batch most uncertain, half the next arrivals), ``uncertainty+diversity`` (k-means over the 3× most
uncertain items, the most uncertain per cluster) and ``clustered`` (cluster-margin: k-means over the
whole pool into one cluster per label of the batch, the most uncertain per cluster). ``POOL_ORDERS`` read no
model score (round of 2026-12-05): ``typical`` (TypiClust: the most typical item of the least covered k-means
cluster) and ``k-center`` (core-set greedy: the item farthest from every labelled one). Round 7 (2026-12-06):
``typical-then-uncertainty`` (a TypiClust cold start, then uncertainty: ``COLD_START_LABELS``) and
``power-uncertainty`` (the batch drawn with probability proportional to the label value: ``power_batch``). ``errors-first``
reads the pool's true labels (``ERROR_BOUND``): a probe of how much any order could gain, never a queue.

Two rules keep the curves about the order and not about fitting noise: a model is fitted on its labels
in dataset order (the same labels give the same model, whatever order reviewers gave them in), and the
last point of every order is the whole pool (the same labels, so the same model and accuracy).

Selection: the queue's order is the label-value order with the lowest ratio on the tuning seed's
repetitions (``TUNING_SEEDS``; ties: the larger mean accuracy over the curve), or one fixed before the
run (``queue_order``, chosen on other seeds); the numbers to quote are the other seeds' repetitions.

Used by ``bench/learning_curve.py`` and ``bench/learning_screen.py`` (moved here from
``moderation/inference/stage1/learning.py``: only the benches and their tests ran it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import normalize
from threadpoolctl import threadpool_limits

from moderation.inference.stage1.inputs import TextItem
from moderation.inference.stage1.label_value import label_value, uncertainty_term
from moderation.inference.stage1.model import BinaryHead, Stage1Config, binary_head_fit

ORDERS = ("arrival", "uncertainty")
# Per-item label-value terms (queue candidates), then the batch-level variants of the earlier round.
VALUE_ORDERS = ("uncertainty", "committee", "class-balanced", "density")
VARIANTS = (
    "committee",
    "class-balanced",
    "density",
    "uncertainty+arrival",
    "uncertainty+diversity",
    "clustered",
    "errors-first",
    "typical",
    "k-center",
    "typical-then-uncertainty",
    "power-uncertainty",
)
# Batch orders: they choose a whole batch at a time (a queue would re-rank its items per batch), not a per-item value.
BATCH_ORDERS = (
    "uncertainty+arrival",
    "uncertainty+diversity",
    "clustered",
    "typical",
    "k-center",
    "typical-then-uncertainty",
    "power-uncertainty",
)
# Batch orders that read no model score, only the head's TF-IDF columns of the labelled items and the pool: the
# ``typical_batch`` / ``k_center_batch`` below (the round of 2026-12-05; not adopted).
POOL_ORDERS = ("typical", "k-center")
# Not an order any queue could serve: it reads the pool's true labels and serves the items the current model gets
# wrong first (least confident of them first). An upper-bound probe: if even it does not learn faster than
# arrival, no acquisition rule over this model can by much.
ERROR_BOUND = "errors-first"
DIVERSITY_PREFILTER = 3
# Round 7 (hml21, 2026-12-06; registered in bench/RESULTS.md before the run). ``typical-then-uncertainty`` (TCM,
# Doucet et al. 2023): a cold start by TypiClust while fewer than ``COLD_START_LABELS`` items are labelled, the
# queue's uncertainty order after. ``power-uncertainty`` (stochastic batch acquisition, Kirsch et al. 2023): the
# batch is drawn without replacement with probability proportional to the label value ** ``POWER_BETA``.
COLD_START_LABELS = 100
POWER_BETA = 1.0
COMMITTEE_SIZE = 5
COMMITTEE_C = 4.0
TUNING_SEEDS = (0,)


# Which uncertainty term the review queue uses (``review.services.review_label_value`` reads
# ``stage1.label_value.uncertainty_term``), reported beside the run's choice. The learning-curve screen
# (bench/RESULTS.md, "Stage 1") picked "density" on seeds 5-9 by a ratio read off a flat, noisy curve; its mean
# accuracy over the curve is no better than uncertainty's, and serving it would need the pending pool's mean TF-IDF
# vector at routing time. No order reached the 0.6.
LABEL_VALUE_TERM = "uncertainty"


def label_value_order(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Positions of the items, most valuable label first; equal values keep their given (arrival) order."""
    return np.argsort(-np.asarray(values, dtype=float), kind="stable")


def committee_term(member_p: np.ndarray) -> np.ndarray:
    """Query by committee (McCallum & Nigam 1998): mean KL divergence of each member's P(violative)
    from the committee's mean, in bits (0 = the members agree). ``member_p``: members × items."""
    p = np.clip(np.asarray(member_p, dtype=float), 1e-6, 1 - 1e-6)
    mean = p.mean(axis=0)

    def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a * np.log2(a / b) + (1 - a) * np.log2((1 - a) / (1 - b))

    return np.clip(kl(p, mean[None, :]).mean(axis=0), 0.0, 1.0)


def class_balanced_term(p_violative: np.ndarray, violative_share: float) -> np.ndarray:
    """Uncertainty weighted against the labelled set's class skew: an item predicted to be of the
    class the labels hold less of counts more (weight 0.5 / share of that class, as sklearn's
    ``balanced`` class weight), so uncertainty sampling does not keep labelling one side."""
    p = np.asarray(p_violative, dtype=float)
    share = min(max(violative_share, 1e-3), 1 - 1e-3)
    weight = np.where(p > 0.5, 0.5 / share, 0.5 / (1 - share))
    return uncertainty_term(p) * weight / max(0.5 / share, 0.5 / (1 - share))


def density_term(p_violative: np.ndarray, similarity: np.ndarray) -> np.ndarray:
    """Information density (Settles & Craven 2008, β = 1): uncertainty × the item's mean cosine
    similarity to the pool, so outliers (one-off garbled OCR) are not labelled first."""
    return uncertainty_term(p_violative) * np.clip(np.asarray(similarity, dtype=float), 0.0, 1.0)


@dataclass
class LearningCurves:
    labels: list[int]  # label counts at which the model was retrained and scored
    curves: dict[str, list[list[float]]]  # order -> one accuracy curve per repetition
    n_locked: list[int]  # locked items per repetition
    repetitions: list[tuple[int, int]] = field(default_factory=list)  # (seed, locked fold) per curve
    tuning_seeds: tuple[int, ...] = TUNING_SEEDS
    # The queue's order when it was fixed before this run (chosen on other seeds): then nothing is chosen here.
    queue_order: str | None = None

    def __post_init__(self) -> None:
        if not self.repetitions:
            self.repetitions = [(seed, 0) for seed in range(len(next(iter(self.curves.values()))))]

    def select(self, which: str = "all") -> list[int]:
        """Repetition indices: ``all``, ``tuning`` (the tuning seeds) or ``held_out`` (the other seeds)."""
        if which == "all":
            return list(range(len(self.repetitions)))
        tuning = [i for i, (seed, _) in enumerate(self.repetitions) if seed in self.tuning_seeds]
        held_out = [i for i in range(len(self.repetitions)) if i not in tuning]
        if which == "tuning":
            return tuning or held_out  # no tuning seed in this run: every repetition
        return held_out or tuning

    def mean(self, order: str, reps: Sequence[int] | None = None) -> list[float]:
        rows = np.asarray(self.curves[order], dtype=float)
        index = list(range(len(rows))) if reps is None else list(reps)
        return [float(v) for v in rows[index].mean(axis=0)]

    def labels_to_reach(self, order: str, accuracy: float, reps: Sequence[int] | None = None) -> int | None:
        for n, value in zip(self.labels, self.mean(order, reps), strict=True):
            if value >= accuracy - 1e-9:
                return n
        return None

    def ratio(self, order: str, reps: Sequence[int] | None = None) -> float:
        """Labels ``order`` needs to reach the arrival order's final accuracy ÷ labels the arrival order
        needs (curves averaged over ``reps``). When ``order`` never reaches it, its need counts as one
        retrain past the pool (ratio > 1)."""
        target = self.mean("arrival", reps)[-1]
        arrival = self.labels_to_reach("arrival", target, reps) or self.labels[-1]
        reached = self.labels_to_reach(order, target, reps)
        need = reached if reached is not None else self.labels[-1] + (self.labels[-1] - self.labels[-2])
        return round(need / arrival, 4)

    def ratio_spread(self, order: str, reps: Sequence[int] | None = None, *, boot: int = 2000) -> dict[str, Any]:
        """The ratio over bootstrap resamples of the repetitions (paired with arrival): median, 95 %
        interval, and the share of resamples at or under the issue's 0.6."""
        index = np.asarray(self.select() if reps is None else list(reps))
        rng = np.random.default_rng(0)
        values = np.array([self.ratio(order, rng.choice(index, size=len(index)).tolist()) for _ in range(boot)])
        return {
            "median": round(float(np.median(values)), 4),
            "ci95": [round(float(np.quantile(values, 0.025)), 4), round(float(np.quantile(values, 0.975)), 4)],
            "share_at_most_0.6": round(float(np.mean(values <= 0.6)), 4),
        }

    def ratio_per_seed(self, order: str, reps: Sequence[int] | None = None) -> dict[int, float]:
        """The ratio of each seed's repetitions on their own (its locked folds' curves averaged): the spread over
        seeds, beside the bootstrap over repetitions."""
        index = self.select() if reps is None else list(reps)
        seeds = sorted({self.repetitions[i][0] for i in index})
        return {seed: self.ratio(order, [i for i in index if self.repetitions[i][0] == seed]) for seed in seeds}

    def gap(self, order: str, reps: Sequence[int] | None = None) -> dict[str, Any]:
        """Mean accuracy over the curve, ``order`` minus arrival (paired per repetition): mean and the
        spread of the per-repetition differences."""
        index = self.select() if reps is None else list(reps)
        diff = np.asarray(self.curves[order])[index].mean(axis=1) - np.asarray(self.curves["arrival"])[index].mean(
            axis=1
        )
        return {
            "mean": round(float(diff.mean()), 4),
            "se": round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4) if len(diff) > 1 else None,
            "min": round(float(diff.min()), 4),
            "max": round(float(diff.max()), 4),
        }

    def chosen(self) -> str:
        """The label-value order for the queue: the one fixed beforehand, else chosen on the tuning repetitions only."""
        if self.queue_order is not None:
            if self.queue_order not in self.curves:
                raise ValueError(f"the pre-registered queue order {self.queue_order!r} was not simulated")
            return self.queue_order
        tuning = self.select("tuning")
        candidates = [o for o in VALUE_ORDERS if o in self.curves]
        return min(candidates, key=lambda o: (self.ratio(o, tuning), -float(np.mean(self.mean(o, tuning)))))

    def summary(self) -> dict[str, Any]:
        """``ratio``: the queue's order (chosen on the tuning seed) on the held-out repetitions."""
        held_out, tuning = self.select("held_out"), self.select("tuning")
        chosen = self.chosen()
        target = self.mean("arrival", held_out)[-1]
        orders = {
            order: {
                "ratio_held_out": self.ratio(order, held_out),
                "ratio_held_out_bootstrap": self.ratio_spread(order, held_out),
                "ratio_per_seed": self.ratio_per_seed(order, held_out),
                "ratio_tuning": self.ratio(order, tuning),
                "ratio_all": self.ratio(order),
                "labels_to_reach": self.labels_to_reach(order, target, held_out),
                "mean_accuracy_gap_vs_arrival": self.gap(order, held_out),
                "mean_held_out": [round(v, 4) for v in self.mean(order, held_out)],
            }
            for order in self.curves
            if order != "arrival"
        }
        return {
            "ratio": orders[chosen]["ratio_held_out"],
            "queue_order_pre_registered": self.queue_order is not None,
            "ratio_bootstrap": orders[chosen]["ratio_held_out_bootstrap"],
            "queue_order": chosen,
            "queue_order_in_product": LABEL_VALUE_TERM,
            "arrival_final_accuracy": round(target, 4),
            "labels_arrival": self.labels_to_reach("arrival", target, held_out),
            "labels_queue_order": orders[chosen]["labels_to_reach"],
            "labels": self.labels,
            "arrival_mean": [round(v, 4) for v in self.mean("arrival", held_out)],
            "queue_order_mean": orders[chosen]["mean_held_out"],
            # The pair, as the dashboard draws it: arrival vs the queue's order.
            "arrival_median": [round(v, 4) for v in self.mean("arrival", held_out)],
            "uncertainty_median": orders[chosen]["mean_held_out"],
            "orders": orders,
            "repetitions": len(self.repetitions),
            "repetitions_held_out": len(held_out),
            "tuning_seeds": list(self.tuning_seeds),
            "n_locked": self.n_locked,
            "per_repetition": {order: [[round(v, 4) for v in c] for c in rows] for order, rows in self.curves.items()},
            "repetition_keys": [list(r) for r in self.repetitions],
        }


def curves_from_progress(
    lines: Iterable[str], labels: list[int], tuning_seeds: Sequence[int] = TUNING_SEEDS
) -> LearningCurves:
    """Rebuild curves from the ``curve (seed, fold, 'order'): a b c …`` lines that ``bench/learning_curve.py``
    prints as each curve completes (a run split over processes, or one stopped early). Only repetitions
    with a curve for every order that appears are kept."""
    found: dict[tuple[int, int], dict[str, list[float]]] = {}
    for line in lines:
        match = _PROGRESS.match(line.strip())
        if match:
            seed, fold, order, values = int(match[1]), int(match[2]), match[3], [float(v) for v in match[4].split()]
            if len(values) == len(labels):
                found.setdefault((seed, fold), {})[order] = values
    orders = sorted({order for curves in found.values() for order in curves}, key=_order_rank)
    complete = sorted(key for key, curves in found.items() if set(curves) == set(orders))
    if not complete or "arrival" not in orders:
        raise ValueError("no repetition has a curve for every order")
    return LearningCurves(
        labels=labels,
        curves={order: [found[key][order] for key in complete] for order in orders},
        n_locked=[0] * len(complete),
        repetitions=complete,
        tuning_seeds=tuple(tuning_seeds),
    )


_PROGRESS = re.compile(r"curve \((\d+), (\d+), '([^']+)'\): ([\d. ]+)$")


def _order_rank(order: str) -> int:
    known = (*ORDERS, *VARIANTS)
    return known.index(order) if order in known else len(known)


def locked_splits(y: np.ndarray, locked_folds: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(pool, locked) per repetition's locked fold: the same folds for every seed and order."""
    splitter = StratifiedKFold(n_splits=locked_folds, shuffle=True, random_state=0)
    return list(splitter.split(np.zeros(len(y)), y))


def curve_sizes(splits: Sequence[tuple[np.ndarray, np.ndarray]], start: int, step: int) -> list[int]:
    """Label counts at which every curve is scored: from ``start`` every ``step`` to the smallest pool."""
    pool_size = min(len(pool) for pool, _ in splits)
    sizes = list(range(start, pool_size + 1, step))
    if sizes[-1] != pool_size:
        sizes.append(pool_size)
    return sizes


def simulate_learning_curves(
    items: Sequence[TextItem],
    violative: Sequence[bool],
    *,
    start: int = 40,
    step: int = 20,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    locked_folds: int = 4,
    config: Stage1Config | None = None,
    orders: Sequence[str] = ORDERS,
    jobs: int = 1,
    tuning_seeds: Sequence[int] = TUNING_SEEDS,
    progress: Callable[[tuple[int, int, str], list[float]], None] | None = None,
    queue_order: str | None = None,
) -> LearningCurves:
    """``progress(task, curve)`` is called with each (seed, locked fold, order) curve as it completes."""
    config = config or Stage1Config()
    unknown = set(orders) - set(ORDERS) - set(VARIANTS)
    if unknown or "arrival" not in orders:
        raise ValueError(f"orders must hold arrival and may add {(*ORDERS[1:], *VARIANTS)} (got {list(orders)})")
    y = np.asarray(violative, dtype=int)
    splits = locked_splits(y, locked_folds)
    sizes = curve_sizes(splits, start, step)
    repetitions = [(seed, fold) for seed in seeds for fold in range(locked_folds)]
    tasks = [(seed, fold, order) for seed, fold in repetitions for order in orders]
    args = [
        (items, y, splits[fold][0], splits[fold][1], sizes, start, step, config, seed, order)
        for seed, fold, order in tasks
    ]
    if jobs > 1:  # each curve is independent: spread them over processes, in task order as they finish
        from joblib import Parallel, delayed

        finished: Iterable[list[float]] = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_curve)(*a) for a in args
        )
    else:
        finished = (_curve(*a) for a in args)
    results = []
    for task, curve in zip(tasks, finished, strict=True):
        results.append(curve)
        if progress is not None:
            progress(task, curve)
    curves: dict[str, list[list[float]]] = {order: [] for order in orders}
    for (_, _, order), curve in zip(tasks, results, strict=True):
        curves[order].append(curve)
    return LearningCurves(
        labels=sizes,
        curves=curves,
        n_locked=[len(splits[fold][1]) for _, fold in repetitions],
        repetitions=repetitions,
        tuning_seeds=tuple(tuning_seeds),
        queue_order=queue_order,
    )


def fit_noise(
    items: Sequence[TextItem],
    violative: Sequence[bool],
    *,
    locked_folds: int = 4,
    config: Stage1Config | None = None,
    fits: int = 5,
) -> dict[str, Any]:
    """How far apart the locked-fold accuracies of models fitted on the SAME labels (a whole pool) fall
    when only the head's inner-fold split changes (``random_state``): the fitting noise any order's
    curve carries, which no acquisition rule controls."""
    config = config or Stage1Config()
    y = np.asarray(violative, dtype=int)
    spans, per_fold = [], []
    for pool, locked in locked_splits(y, locked_folds):
        fitted = sorted(pool.tolist())
        accuracies = []
        for state in range(fits):
            head = binary_head_fit([items[i] for i in fitted], y[fitted], config, state)
            p = head.predict_proba([items[i] for i in locked])[:, 1]
            accuracies.append(round(float(np.mean((p > 0.5) == (y[locked] == 1))), 4))
        per_fold.append(accuracies)
        spans.append(max(accuracies) - min(accuracies))
    return {
        "fits_per_fold": fits,
        "locked_accuracy_per_fold": per_fold,
        "span_per_fold": [round(v, 4) for v in spans],
        "sd_mean": round(float(np.mean([np.std(a, ddof=1) for a in per_fold])), 4) if fits > 1 else None,
    }


def _errors_first(head: BinaryHead, remaining: Sequence[TextItem], y_remaining: np.ndarray, take: int) -> set[int]:
    """``ERROR_BOUND``: the pool items the current model gets wrong (their labels read), least confident first."""
    p = head.predict_proba(remaining)[:, 1]
    wrong = (p > 0.5) != (np.asarray(y_remaining) == 1)
    key = wrong.astype(float) * 2.0 + uncertainty_term(p)
    return set(label_value_order(key)[:take].tolist())


def _curve(
    items: Sequence[TextItem],
    y: np.ndarray,
    pool: np.ndarray,
    locked: np.ndarray,
    sizes: list[int],
    start: int,
    step: int,
    config: Stage1Config,
    seed: int,
    order: str,
) -> list[float]:
    """Locked-fold accuracy after each retrain as reviewers label the pool in ``order`` (seed: arrival order)."""
    arrival = np.random.default_rng(seed).permutation(pool)
    locked_items = [items[i] for i in locked]
    labelled, remaining = list(arrival[:start]), list(arrival[start:])
    curve = []
    for size in sizes:
        if size == sizes[-1]:  # the last point: the whole pool, the same labels (and so the same model) for every order
            labelled, remaining = labelled + remaining, []
        # A model is a function of its labelled set, not of the order the labels came in: fitted on the
        # items in dataset order (the head's inner folds are drawn by position; in reviewers' order two
        # orders holding the same labels got models up to 9 points apart on the locked fold).
        fitted = sorted(labelled)
        labelled_items = [items[i] for i in fitted]
        head = binary_head_fit(labelled_items, y[fitted], config, seed)
        p = head.predict_proba(locked_items)[:, 1]
        curve.append(float(np.mean((p > 0.5) == (y[locked] == 1))))
        take = min(size + step, sizes[-1]) - len(labelled) if size != sizes[-1] else 0
        if take <= 0:
            continue
        if order == "arrival":
            labelled, remaining = labelled + remaining[:take], remaining[take:]
            continue
        if order == ERROR_BOUND:
            chosen = _errors_first(head, [items[i] for i in remaining], y[remaining], take)
        else:
            pool_items = [items[i] for i in remaining]
            chosen = next_batch(
                order, head, pool_items, take, seed, labelled_items=labelled_items, labelled_y=y[fitted]
            )
        labelled += [remaining[k] for k in sorted(chosen)]
        remaining = [item for k, item in enumerate(remaining) if k not in chosen]
    return curve


def _columns(head: BinaryHead, items: Sequence[TextItem]) -> sparse.csr_matrix:
    """The head's own TF-IDF columns of ``items`` (every field side by side), rows L2-normalised."""
    return normalize(sparse.hstack([block.transform(items) for block in head.blocks]).tocsr())


def committee_p(
    head: BinaryHead, labelled_items: Sequence[TextItem], labelled_y: np.ndarray, items: Sequence[TextItem], seed: int
) -> np.ndarray:
    """P(violative) of ``items`` by each of ``COMMITTEE_SIZE`` bootstrap replicates (members × items)."""
    x_train, x = _columns(head, labelled_items), _columns(head, items)
    y = np.asarray(labelled_y, dtype=int)
    rng = np.random.default_rng(seed)
    members: list[np.ndarray] = []
    with threadpool_limits(limits=1):
        while len(members) < COMMITTEE_SIZE:
            sample = rng.integers(0, len(y), size=len(y))
            if len(set(y[sample].tolist())) < 2:
                continue
            model = LogisticRegression(C=COMMITTEE_C, class_weight="balanced", max_iter=3000)
            members.append(model.fit(x_train[sample], y[sample]).predict_proba(x)[:, 1])
    return np.vstack(members)


def value_term(
    order: str,
    head: BinaryHead,
    items: Sequence[TextItem],
    *,
    labelled_items: Sequence[TextItem],
    labelled_y: np.ndarray,
    seed: int,
) -> np.ndarray:
    """The per-item stage-1 term of a label-value order (``stage1.label_value``) for ``items``."""
    p = head.predict_proba(items)[:, 1]
    if order == "uncertainty":
        return uncertainty_term(p)
    if order == "committee":
        return committee_term(committee_p(head, labelled_items, labelled_y, items, seed))
    if order == "class-balanced":
        return class_balanced_term(p, float(np.mean(labelled_y)))
    if order == "density":
        x = _columns(head, items)
        similarity = np.asarray(x @ np.asarray(x.mean(axis=0)).ravel()).ravel()
        return density_term(p, similarity)
    raise ValueError(f"{order!r} is not a label-value order")


def next_batch(
    order: str,
    head: BinaryHead,
    remaining: Sequence[TextItem],
    take: int,
    seed: int,
    *,
    labelled_items: Sequence[TextItem] = (),
    labelled_y: np.ndarray | None = None,
) -> set[int]:
    """Positions (in ``remaining``, which is in arrival order) of the next ``take`` items ``order`` serves."""
    y = np.zeros(0, dtype=int) if labelled_y is None else labelled_y
    if order == "typical-then-uncertainty":
        order = "typical" if len(labelled_items) < COLD_START_LABELS else "uncertainty"
    if order in POOL_ORDERS:  # the labelled items' rows first, then the pool's
        x = _columns(head, [*labelled_items, *remaining])
        is_labelled = np.arange(x.shape[0]) < len(labelled_items)
        picks = (
            typical_batch(x, is_labelled, take, seed) if order == "typical" else k_center_batch(x, is_labelled, take)
        )
        return {k - len(labelled_items) for k in picks}
    base = order if order in VALUE_ORDERS else "uncertainty"
    term = value_term(base, head, remaining, labelled_items=labelled_items, labelled_y=y, seed=seed)
    ranked = label_value_order([label_value(uncertainty=float(t)) for t in term])
    if order in VALUE_ORDERS:
        return set(ranked[:take].tolist())
    if order == "power-uncertainty":
        values = [label_value(uncertainty=float(t)) for t in term]
        return set(power_batch(values, take, np.random.default_rng([seed, len(labelled_items)])).tolist())
    if order == "uncertainty+arrival":
        chosen = set(ranked[: (take + 1) // 2].tolist())
        for k in range(len(remaining)):  # then the earliest arrivals not already taken
            if len(chosen) >= take:
                break
            chosen.add(k)
        return chosen
    if order == "clustered":
        return _clustered(head, remaining, ranked, take, seed)
    if order != "uncertainty+diversity":
        raise ValueError(f"unknown order {order!r}")
    shortlist = ranked[: DIVERSITY_PREFILTER * take]
    if len(shortlist) <= take:
        return set(shortlist.tolist())
    x = _columns(head, [remaining[k] for k in shortlist])
    with threadpool_limits(limits=1):
        clusters = KMeans(n_clusters=take, n_init=3, random_state=seed).fit_predict(x)
    chosen = set()
    for cluster in range(take):
        members = np.flatnonzero(clusters == cluster)
        if len(members):
            chosen.add(int(shortlist[members[0]]))  # shortlist is most uncertain first
    for k in shortlist:  # empty clusters (duplicate rows): fill with the next most uncertain
        if len(chosen) >= take:
            break
        chosen.add(int(k))
    return chosen


def _clustered(head: BinaryHead, remaining: Sequence[TextItem], ranked: np.ndarray, take: int, seed: int) -> set[int]:
    """Cluster-margin (Citovsky et al. 2021; Zhdanov 2019): k-means over the whole remaining pool into
    ``take`` clusters in the head's TF-IDF space, the most valuable item of each cluster, so a batch covers
    the pool's kinds of item instead of twenty near-copies of the same uncertain one."""
    if len(remaining) <= take:
        return set(range(len(remaining)))
    with threadpool_limits(limits=1):
        clusters = KMeans(n_clusters=take, n_init=3, random_state=seed).fit_predict(_columns(head, remaining))
    rank = np.empty(len(remaining), dtype=int)
    rank[ranked] = np.arange(len(remaining))
    chosen: set[int] = set()
    for cluster in range(take):
        members = np.flatnonzero(clusters == cluster)
        if len(members):
            chosen.add(int(members[np.argmin(rank[members])]))
    for k in ranked:  # empty clusters (duplicate rows): the next most valuable
        if len(chosen) >= take:
            break
        chosen.add(int(k))
    return chosen


# Batch orders over a pending pool (issue 15, item 5: round of 2026-12-05, pre-registered in bench/RESULTS.md; not
# adopted, so moved out of the product's stage1/label_value.py).
# They choose the next ``take`` items to label from vectors of the labelled items and the candidates together (rows
# L2-normalised: here stage 1's own TF-IDF columns), instead of a per-item value.
TYPICAL_NEIGHBOURS = 20  # TypiClust's k for typicality
TYPICAL_MIN_CLUSTER = 5  # at most n / 5 clusters, so a cluster has items to be typical of


def _cosine_distances(vectors: Any) -> np.ndarray:
    """Dense cosine distances between L2-normalised rows (sparse or dense)."""
    product = vectors @ vectors.T
    similarity = product.toarray() if hasattr(product, "toarray") else np.asarray(product)
    return np.clip(1.0 - similarity, 0.0, 2.0)


def typical_batch(vectors: Any, labelled: Sequence[bool] | np.ndarray, take: int, seed: int) -> list[int]:
    """TypiClust (Hacohen, Dekel & Weinshall 2022, for small label budgets): k-means of all items into
    ``min(labelled + take, n / TYPICAL_MIN_CLUSTER)`` clusters; each pick goes to the cluster with the fewest
    labelled (or already picked) items, ties to the larger cluster, and takes its most typical unlabelled item
    (typicality = 1 / mean cosine distance to its ``TYPICAL_NEIGHBOURS`` nearest neighbours in the cluster).
    Reads no model score: representative items of uncovered regions first. Row positions of the picks."""
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    is_labelled = np.asarray(labelled, dtype=bool)
    n = len(is_labelled)
    candidates = np.flatnonzero(~is_labelled)
    if len(candidates) <= take:
        return candidates.tolist()
    k = max(1, min(int(is_labelled.sum()) + take, n // TYPICAL_MIN_CLUSTER))
    with threadpool_limits(limits=1):
        clusters = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(vectors)
    distance = _cosine_distances(vectors)
    typicality = np.zeros(n)
    for cluster in range(k):
        members = np.flatnonzero(clusters == cluster)
        if len(members) < 2:
            continue
        within = distance[np.ix_(members, members)]
        np.fill_diagonal(within, np.inf)
        nearest = np.sort(within, axis=1)[:, : min(TYPICAL_NEIGHBOURS, len(members) - 1)]
        typicality[members] = 1.0 / (nearest.mean(axis=1) + 1e-6)
    covered = np.bincount(clusters[is_labelled], minlength=k)
    sizes = np.bincount(clusters, minlength=k)
    open_ = ~is_labelled
    chosen: list[int] = []
    while len(chosen) < take:
        available = [c for c in range(k) if open_[clusters == c].any()]
        cluster = min(available, key=lambda c: (covered[c], -sizes[c], c))
        members = np.flatnonzero((clusters == cluster) & open_)
        pick = int(members[np.argmax(typicality[members])])  # ties: the earliest row
        chosen.append(pick)
        open_[pick] = False
        covered[cluster] += 1
    return chosen


def k_center_batch(vectors: Any, labelled: Sequence[bool] | np.ndarray, take: int) -> list[int]:
    """Core-set greedy k-center (Sener & Savarese 2018): each pick is the unlabelled item farthest (cosine
    distance) from every labelled or already picked item, so a batch covers the pool instead of repeating one
    kind of item. Reads no model score. Row positions of the picks; ties: the earliest row."""
    is_labelled = np.asarray(labelled, dtype=bool)
    candidates = np.flatnonzero(~is_labelled)
    if len(candidates) <= take:
        return candidates.tolist()
    distance = _cosine_distances(vectors)
    nearest = distance[:, is_labelled].min(axis=1) if is_labelled.any() else np.full(len(is_labelled), np.inf)
    nearest[is_labelled] = -np.inf
    chosen: list[int] = []
    for _ in range(take):
        pick = int(np.argmax(nearest))
        chosen.append(pick)
        nearest = np.minimum(nearest, distance[:, pick])
        nearest[chosen] = -np.inf
    return chosen


def power_batch(values: Sequence[float] | np.ndarray, take: int, rng: np.random.Generator) -> np.ndarray:
    """Stochastic power acquisition (Kirsch et al. 2023): ``take`` positions drawn without replacement with
    probability proportional to ``value ** POWER_BETA`` (the Gumbel-top-k trick: the top ``take`` of
    ``β·log value + Gumbel noise``). Top-k of a per-item value fills a batch with near-copies of one uncertain
    kind and never labels the confident part of the pool (sampling bias); drawing keeps the preference for
    valuable labels without either. Items of value 0 come last (in draw order among themselves)."""
    v = np.asarray(values, dtype=float)
    noise = rng.gumbel(size=len(v))
    with np.errstate(divide="ignore"):
        keys = np.where(v > 0, POWER_BETA * np.log(np.where(v > 0, v, 1.0)) + noise, -np.inf)
    # Zero-value items last, drawn among themselves by the same noise.
    order = np.lexsort((-noise, -keys))
    return order[:take]
