"""Stage-1 features and models.

Features are language-agnostic: TF-IDF over character n-grams of the title, on-screen text (OCR) and
speech (ASR), each field with its own vocabulary, and hashtags as whole tokens. Two heads:

* binary (violative vs. safe). ``stacked``: one class-balanced logistic regression per field, each
  with its C chosen by the log-loss of out-of-fold predictions inside the training set, and a plain
  logistic regression (the meta-learner) over their out-of-fold scores. The fields differ a lot in
  length and noise (OCR is long and garbled, ASR mostly empty); one model over all columns lets the
  long noisy field drown the short informative one. ``joint``: one logistic regression over all
  columns, its C chosen the same way, Platt-scaled by the same meta-learner over its one score.
  Either way the meta-learner is fitted on held-out scores without class weights, so its output is a
  calibrated probability under the training prior (Platt scaling on held-out data) and 0.5 is the
  accuracy-optimal cut. Vocabularies are fitted inside every fold too: no held-out score ever comes
  from a model or a vocabulary that saw its item. The head keeps the held-out probabilities of its
  training items (``held_out_p``): model selection and the cascade's cut are chosen from them.
* multi-class over the policy's tags: logistic regression over all columns, trained on violative
  items; it only chooses *which* violation once the binary head says "violative".

The two are combined into one distribution: P(safe) = 1 - p, P(tag) = p * P(tag | violative).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from moderation.errors import ModerationError
from moderation.inference.stage1.inputs import TextItem

_HASHTAG = re.compile(r"#\s*([^#@\s]+)")
FIELDS = ("title", "ocr", "asr", "hashtags")


@dataclass(frozen=True)
class Stage1Config:
    """One candidate model. ``moderation.inference.stage1.selection.CANDIDATES`` lists the ones that
    nested cross-validation chooses between; C is chosen inside every fit."""

    name: str = "stacked-char12"
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    binary_head: str = "stacked"  # or "joint"
    stack_cs: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    stack_folds: int = 5
    meta_c: float = 1.0
    # log(frames) as a meta-learner input. Off: a benchmark artifact, not a property of live videos.
    frames_signal: bool = False
    # The fields the binary head reads (a subset of FIELDS).
    fields: tuple[str, ...] = FIELDS
    multiclass_c: float = 10.0
    multiclass_balanced: bool = True
    # sklearn's TF-IDF analyzer for the text fields: "char_wb" (n-grams inside whitespace-separated
    # runs) or "char" (also across spaces and line breaks).
    analyzer: str = "char_wb"
    # Class weight of the per-field (or joint) logistic regressions; the meta-learner is never weighted.
    class_weight: str | None = "balanced"
    # How a new item's field scores are made. "refit": one model per field refitted on every training item.
    # "cross-fit": the mean logit of the field's inner-fold models (each fitted on the training part of one
    # stacking fold, at the chosen C), so the meta-learner and the cascade's cut, both set on held-out scores
    # of such fold models, see scores of the same kind in serving.
    serving: str = "refit"


def field_texts(items: Sequence[TextItem], name: str) -> list[str]:
    if name == "hashtags":
        return [" ".join(_HASHTAG.findall(item.title)) for item in items]
    return [getattr(item, name) for item in items]


def _vectorizer(name: str, config: Stage1Config) -> TfidfVectorizer:
    if name == "hashtags":  # whole tokens: "#小蛮腰扭起来" means more than its characters
        return TfidfVectorizer(sublinear_tf=True, token_pattern=r"\S+", min_df=config.min_df)  # noqa: S106
    return TfidfVectorizer(
        sublinear_tf=True, analyzer=config.analyzer, ngram_range=config.ngram_range, min_df=config.min_df
    )


def _field_model(c: float, config: Stage1Config) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight=config.class_weight, max_iter=3000)


class FieldBlock:
    """TF-IDF of one or more fields side by side; a field without usable vocabulary adds no columns."""

    def __init__(self, fields: Sequence[str], config: Stage1Config) -> None:
        self.vectorizers: dict[str, TfidfVectorizer] = {name: _vectorizer(name, config) for name in fields}
        self.empty: set[str] = set()

    def fit_transform(self, items: Sequence[TextItem]) -> sparse.csr_matrix:
        blocks = []
        for name, vectorizer in self.vectorizers.items():
            try:
                blocks.append(vectorizer.fit_transform(field_texts(items, name)))
            except ValueError:  # empty vocabulary after pruning (e.g. no speech anywhere)
                self.empty.add(name)
        return sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((len(items), 0))

    def transform(self, items: Sequence[TextItem]) -> sparse.csr_matrix:
        blocks = [
            vectorizer.transform(field_texts(items, name))
            for name, vectorizer in self.vectorizers.items()
            if name not in self.empty
        ]
        return sparse.hstack(blocks, format="csr") if blocks else sparse.csr_matrix((len(items), 0))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _subset(items: Sequence[TextItem], index: np.ndarray) -> list[TextItem]:
    return [items[i] for i in index]


class BinaryHead:
    """P(violative): per-group logistic regressions combined by a meta logistic regression fitted on
    their held-out scores (see the module docstring). A group is one field (stacked) or all (joint)."""

    def __init__(self, config: Stage1Config, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state
        fields = config.fields
        groups: list[tuple[str, ...]] = [(name,) for name in fields] if config.binary_head == "stacked" else [fields]
        self.groups = groups
        self.kept: list[tuple[str, ...]] = []  # the groups with vocabulary, in ``blocks`` order
        self.blocks: list[FieldBlock] = []
        self.models: list[LogisticRegression] = []
        self.chosen_c: list[float] = []
        self.meta = LogisticRegression(C=config.meta_c, max_iter=1000)
        # Per kept group, its inner-fold (vocabulary, model) pairs at the chosen C (``serving="cross-fit"`` only).
        self.fold_models: list[list[tuple[FieldBlock, LogisticRegression]]] = []
        self._last_fold_models: list[tuple[FieldBlock, LogisticRegression]] = []
        self.frames_fill: float | None = None
        # Held-out P(violative) of each training item and its true class: the inner-fold evidence.
        self.held_out_p = np.zeros(0)
        self.held_out_y = np.zeros(0, dtype=int)

    def _held_out_scores(
        self, group: tuple[str, ...], items: Sequence[TextItem], y: np.ndarray, splits: list[Any]
    ) -> tuple[float, np.ndarray]:
        """(best C, its held-out logits): every fold's vocabulary and model fitted on its training part."""
        cs = self.config.stack_cs
        oof = np.zeros((len(cs), len(y)))
        fitted: list[tuple[FieldBlock, list[LogisticRegression]]] = []
        for train, test in splits:
            block = FieldBlock(group, self.config)
            x_train = block.fit_transform(_subset(items, train))
            if x_train.shape[1] == 0:
                oof[:, test] = y[train].mean()
                continue
            x_test = block.transform(_subset(items, test))
            models = []
            for k, c in enumerate(cs):
                model = _field_model(c, self.config)
                oof[k, test] = model.fit(x_train, y[train]).predict_proba(x_test)[:, 1]
                models.append(model)
            fitted.append((block, models))
        losses = [log_loss(y, oof[k], labels=[0, 1]) for k in range(len(cs))]
        best = int(np.argmin(losses))
        self._last_fold_models = [(block, models[best]) for block, models in fitted]
        return cs[best], _logit(oof[best])

    def fit(self, items: Sequence[TextItem], y: np.ndarray, splits: list[Any]) -> BinaryHead:
        columns = []
        for group in self.groups:
            block = FieldBlock(group, self.config)
            x = block.fit_transform(items)
            if x.shape[1] == 0:
                continue  # nothing to learn from this field (e.g. no hashtags anywhere)
            c, scores = self._held_out_scores(group, items, y, splits)
            columns.append(scores)
            self.kept.append(group)
            self.blocks.append(block)
            self.models.append(_field_model(c, self.config).fit(x, y))
            self.chosen_c.append(c)
            if self.config.serving == "cross-fit":
                self.fold_models.append(self._last_fold_models)
        if not columns:
            raise ModerationError("Stage 1 found no usable text in the training items.")
        known = [math.log(item.frames) for item in items if item.frames > 0]
        if self.config.frames_signal and known:
            self.frames_fill = float(np.mean(known))
            columns.append(self._frames_column(items))
        scores = np.column_stack(columns)
        self.meta.fit(scores, y)
        self.held_out_p = cross_val_predict(clone(self.meta), scores, y, cv=splits, method="predict_proba")[:, 1]
        self.held_out_y = np.asarray(y, dtype=int)
        self._last_fold_models = []
        return self

    def _frames_column(self, items: Sequence[TextItem]) -> np.ndarray:
        fill = self.frames_fill or 0.0
        return np.array([math.log(item.frames) if item.frames > 0 else fill for item in items])

    def scores(self, items: Sequence[TextItem]) -> np.ndarray:
        """The meta-learner's inputs for new items, made as ``config.serving`` says."""
        return self.cross_fit_scores(items) if self.config.serving == "cross-fit" else self.refit_scores(items)

    def refit_scores(self, items: Sequence[TextItem]) -> np.ndarray:
        columns = [
            model.decision_function(block.transform(items))
            for block, model in zip(self.blocks, self.models, strict=True)
        ]
        return self._with_frames(columns, items)

    def cross_fit_scores(self, items: Sequence[TextItem]) -> np.ndarray:
        """Per kept group, the mean logit of its inner-fold models (a group with no usable fold vocabulary
        falls back to its refitted model)."""
        if len(self.fold_models) != len(self.models):
            raise ModerationError("This stage-1 model was trained without its fold models; train it again.")
        columns = []
        for block, model, folds in zip(self.blocks, self.models, self.fold_models, strict=True):
            if folds:
                columns.append(np.mean([m.decision_function(b.transform(items)) for b, m in folds], axis=0))
            else:
                columns.append(model.decision_function(block.transform(items)))
        return self._with_frames(columns, items)

    def _with_frames(self, columns: list[np.ndarray], items: Sequence[TextItem]) -> np.ndarray:
        if self.frames_fill is not None:
            columns.append(self._frames_column(items))
        return np.column_stack(columns)

    def predict_proba(self, items: Sequence[TextItem]) -> np.ndarray:
        return self.meta.predict_proba(self.scores(items))

    @property
    def held_out_accuracy(self) -> float:
        return float(np.mean((self.held_out_p > 0.5) == (self.held_out_y == 1)))

    @property
    def held_out_log_loss(self) -> float:
        return float(log_loss(self.held_out_y, self.held_out_p, labels=[0, 1]))


def binary_head_fit(
    items: Sequence[TextItem], y_binary: np.ndarray, config: Stage1Config, random_state: int = 0
) -> BinaryHead:
    """Fit the binary head; needs at least 2 items of each class."""
    if config.binary_head not in ("stacked", "joint"):
        raise ValueError(f"unknown binary head {config.binary_head!r}")
    if config.serving not in ("refit", "cross-fit"):
        raise ValueError(f"unknown stage-1 serving {config.serving!r}")
    n_violative = int(y_binary.sum())
    folds = min(config.stack_folds, n_violative, len(y_binary) - n_violative)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    splits = list(splitter.split(np.zeros(len(y_binary)), y_binary))
    # One BLAS thread: these problems are tiny, and threaded BLAS on a busy host is up to 50x slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BinaryHead(config, random_state).fit(items, y_binary, splits)


@dataclass
class Stage1Classifier:
    """A fitted stage-1 model; ``labels[0]`` is the safe label."""

    labels: list[str]
    safe_label: str
    config: Stage1Config
    binary: BinaryHead
    features: FieldBlock | None
    multiclass: LogisticRegression | None
    violation_labels: list[str] = field(default_factory=list)

    def predict_proba(self, items: Sequence[TextItem]) -> np.ndarray:
        """Calibrated probabilities, one row per item, columns in ``labels`` order, rows sum to 1."""
        with threadpool_limits(limits=1):
            p_violative = self.binary.predict_proba(items)[:, 1]
            proba = None
            if self.multiclass is not None and self.features is not None:
                proba = self.multiclass.predict_proba(self.features.transform(items))
        out = np.zeros((len(items), len(self.labels)))
        out[:, 0] = 1.0 - p_violative
        if not self.violation_labels:
            return out
        if proba is None or self.multiclass is None:
            conditional = np.ones((len(items), len(self.violation_labels))) / len(self.violation_labels)
        else:
            classes = list(self.multiclass.classes_)
            conditional = proba[:, [classes.index(tag) for tag in self.violation_labels]]
            total = conditional.sum(axis=1, keepdims=True)
            conditional = np.where(
                total > 0, conditional / np.where(total > 0, total, 1), 1 / len(self.violation_labels)
            )
        for j, tag in enumerate(self.violation_labels):
            out[:, self.labels.index(tag)] = p_violative * conditional[:, j]
        return out

    @staticmethod
    def p_violative(probabilities: np.ndarray) -> np.ndarray:
        return 1.0 - probabilities[:, 0]

    def predict(self, items: Sequence[TextItem]) -> tuple[list[str], np.ndarray]:
        """Predicted label per item and the probability matrix it came from. Violative when
        P(violative) > 0.5 (calibrated: the accuracy-optimal cut); the tag is the likeliest violation."""
        proba = self.predict_proba(items)
        return self.labels_from_proba(proba), proba

    def labels_from_proba(self, proba: np.ndarray) -> list[str]:
        labels = []
        for row in proba:
            if 1.0 - row[0] <= 0.5 or len(self.labels) == 1:
                labels.append(self.safe_label)
            else:
                labels.append(self.labels[1 + int(np.argmax(row[1:]))])
        return labels


def stage1_fit(
    items: Sequence[TextItem],
    labels: Sequence[str],
    *,
    safe_label: str = "正向",
    label_order: Sequence[str] | None = None,
    config: Stage1Config | None = None,
    random_state: int = 0,
    binary: BinaryHead | None = None,
    multiclass: bool = True,
) -> Stage1Classifier:
    """Fit stage 1 on labelled items (at least 2 safe and 2 violative).

    ``label_order`` (e.g. the policy's labels) fixes the output columns; labels seen in training but
    missing from it are appended. ``binary``: a head already fitted on these items (model selection
    fits one per candidate); ``multiclass=False`` skips the tag head (binary metrics only).
    """
    config = config or (binary.config if binary is not None else Stage1Config())
    y = np.asarray(list(labels), dtype=object)
    if len(items) != len(y):
        raise ValueError("items and labels differ in length")
    y_binary = (y != safe_label).astype(int)
    n_violative = int(y_binary.sum())
    n_safe = len(y) - n_violative
    if n_violative < 2 or n_safe < 2:
        raise ModerationError(
            f"Stage 1 needs at least 2 safe and 2 violative labelled items (have {n_safe} safe, {n_violative} violative)."
        )
    order = [safe_label] + [t for t in (label_order or []) if t != safe_label]
    order += sorted({t for t in y if t not in order})
    violation_labels = [t for t in order[1:] if t in set(y)]
    if binary is None:
        binary = binary_head_fit(items, y_binary, config, random_state)
    features, tag_model = None, None
    if multiclass and len(violation_labels) > 1:
        violative = np.flatnonzero(y_binary == 1)
        features = FieldBlock(FIELDS, config)
        x = features.fit_transform(_subset(items, violative))
        # Trained on violative items only: it answers "which violation", the binary head answers "whether".
        tag_model = LogisticRegression(
            C=config.multiclass_c,
            class_weight="balanced" if config.multiclass_balanced else None,
            max_iter=3000,
            random_state=random_state,
        )
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            tag_model.fit(x, y[violative])
    return Stage1Classifier(
        labels=[safe_label] + [t for t in order[1:] if t in set(y) or t in (label_order or [])],
        safe_label=safe_label,
        config=config,
        binary=binary,
        features=features,
        multiclass=tag_model,
        violation_labels=violation_labels,
    )


def stage1_artifact_name(name: str) -> str:
    """Where the stage-1 model ``name`` is stored (media storage, shared by the train and infer workers)."""
    from workbench.storage import artifact_name

    return artifact_name(f"cascade/{name}.joblib")


def stage1_legacy_path(name: str) -> Path:
    """Where a node kept the model before models were shared: found once and uploaded (see ``artifact_local``)."""
    from django.conf import settings

    return Path(settings.MODELS_DIR) / "cascade" / f"{name}.joblib"


def stage1_save(classifier: Stage1Classifier, path: Path) -> None:
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    joblib.dump(classifier, tmp)
    tmp.replace(path)  # readers never see a half-written model


def stage1_load(path: Path | str) -> Stage1Classifier:
    import joblib

    try:
        # Our own artifact, written by stage1_save (via media storage); never a user-supplied file.
        classifier = joblib.load(path)  # noqa: S301
    except FileNotFoundError as exc:
        raise ModerationError(f"The cascade model file {path} is missing; train it again.") from exc
    except (AttributeError, ModuleNotFoundError, ImportError) as exc:
        raise ModerationError(f"The cascade model {path} was saved by an older version; train it again.") from exc
    if not isinstance(classifier, Stage1Classifier):
        raise ModerationError(f"{path} is not a stage-1 cascade model.")
    return classifier
