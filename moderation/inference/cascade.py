"""Cascade stage 1 (COEF-VQ style): a cheap text classifier that decides confident items itself and
escalates uncertain ones to the VLM.

Features are language-agnostic: TF-IDF over character n-grams of title, on-screen text (OCR) and
speech (ASR), each field with its own vocabulary and weight, hashtags as whole tokens, and a few
cheap signals (lengths, segment counts, '@' mentions, hashtags, empty fields). Two heads:

* binary (violative vs. safe), by default *stacked*: one class-balanced logistic regression per
  field (title, OCR, ASR, hashtags), each with its own regularisation chosen by cross-validation
  inside the training set, and a plain logistic regression over their out-of-fold scores. The
  fields differ a lot in length and noise (OCR is long and garbled, ASR is mostly empty), and one
  model over all columns lets the long noisy field drown the short informative one; per-field
  models weighted by a meta-learner do not. The meta-learner is fitted without class weights on
  out-of-fold scores, so its output is a calibrated probability under the training prior and 0.5
  is the accuracy-optimal cut. The meta-learner also sees log(frames), the cover plus selected
  keyframes an item offers (a short video offers fewer): a cheap visual signal that added about
  .025 binary accuracy on the KuaiMod dev split. ``binary_head="joint"`` is the older single
  model over all columns (class-balanced logistic regression, Platt-calibrated by internal
  cross-validation).
* multi-class over the policy's tags: logistic regression over all columns; it only chooses
  *which* violation once the binary head says "violative".

The two are combined into one distribution over all labels: P(safe) = 1 - p, P(tag) = p * P(tag |
violative). Routing escalates items whose normalised binary entropy is above a threshold.

sklearn and numpy only: this module is safe to import in the web process.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from moderation.errors import ModerationError

logger = logging.getLogger(__name__)

_HASHTAG = re.compile(r"#\s*([^#@\s]+)")


@dataclass(frozen=True)
class TextItem:
    """What stage 1 sees of an item: its title, on-screen text and speech."""

    title: str = ""
    ocr: str = ""
    asr: str = ""
    frames: int = 0  # cover + selected keyframes the item offers (Video.sampled_frames); 0 = unknown


@dataclass(frozen=True)
class Stage1Config:
    """Feature and model settings. Defaults chosen by 5-fold CV on the KuaiMod dev split (see README)."""

    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = 2
    title_weight: float = 1.0
    ocr_weight: float = 1.0
    asr_weight: float = 1.0
    hashtag_weight: float = 1.0
    cheap_weight: float = 0.0
    binary_c: float = 4.0
    multiclass_c: float = 10.0
    multiclass_balanced: bool = True
    calibration_folds: int = 5
    # "stacked": per-field models + meta-learner (see the module docstring); "joint": one model.
    binary_head: str = "stacked"
    # Each field model picks its C from this grid by cross-validated log-loss on the training set.
    stack_cs: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    stack_folds: int = 5
    meta_c: float = 1.0
    # The stacked head's meta-learner also sees log(frames) (a cheap visual signal: how much video there is).
    frames_signal: bool = True


def _cheap_signals(item: TextItem) -> list[float]:
    signals: list[float] = []
    for text in (item.title, item.ocr, item.asr):
        signals += [math.log1p(len(text)), math.log1p(text.count("|")), float(not text)]
    signals += [math.log1p(item.title.count("@")), math.log1p(item.title.count("#"))]
    segments = item.ocr.split("|") if item.ocr else []
    signals.append(len(set(segments)) / len(segments) if segments else 1.0)
    return signals


class _FieldVectorizer:
    """TF-IDF over one field; a field with no usable vocabulary (e.g. ASR empty everywhere) adds no columns."""

    def __init__(self, weight: float, **tfidf: Any) -> None:
        self.weight = weight
        self.tfidf = TfidfVectorizer(sublinear_tf=True, **tfidf)
        self.empty = False

    def fit_transform(self, texts: list[str]) -> sparse.csr_matrix:
        try:
            return self.weight * self.tfidf.fit_transform(texts)
        except ValueError:  # empty vocabulary after pruning
            self.empty = True
            return sparse.csr_matrix((len(texts), 0))

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        if self.empty:
            return sparse.csr_matrix((len(texts), 0))
        return self.weight * self.tfidf.transform(texts)


class Stage1Features:
    def __init__(self, config: Stage1Config) -> None:
        self.config = config
        common = {"analyzer": "char_wb", "ngram_range": config.ngram_range, "min_df": config.min_df}
        self.fields = {
            "title": _FieldVectorizer(config.title_weight, **common),
            "ocr": _FieldVectorizer(config.ocr_weight, **common),
            "asr": _FieldVectorizer(config.asr_weight, **common),
        }
        # Hashtags as whole tokens: "#小蛮腰扭起来" means more than its characters.
        self.hashtags = _FieldVectorizer(config.hashtag_weight, token_pattern=r"\S+", min_df=config.min_df)  # noqa: S106
        self.scaler = StandardScaler()

    @staticmethod
    def _hashtags(items: Sequence[TextItem]) -> list[str]:
        return [" ".join(_HASHTAG.findall(item.title)) for item in items]

    def _blocks(self, items: Sequence[TextItem], fit: bool) -> sparse.csr_matrix:
        blocks = []
        for name, vectorizer in self.fields.items():
            texts = [getattr(item, name) for item in items]
            blocks.append(vectorizer.fit_transform(texts) if fit else vectorizer.transform(texts))
        if self.config.hashtag_weight:
            tags = self._hashtags(items)
            blocks.append(self.hashtags.fit_transform(tags) if fit else self.hashtags.transform(tags))
        if self.config.cheap_weight:
            cheap = np.array([_cheap_signals(item) for item in items], dtype=float)
            scaled = self.scaler.fit_transform(cheap) if fit else self.scaler.transform(cheap)
            blocks.append(sparse.csr_matrix(self.config.cheap_weight * scaled))
        return sparse.hstack(blocks, format="csr")

    def fit_transform(self, items: Sequence[TextItem]) -> sparse.csr_matrix:
        return self._blocks(items, fit=True)

    def transform(self, items: Sequence[TextItem]) -> sparse.csr_matrix:
        return self._blocks(items, fit=False)


_STACK_FIELDS = ("title", "ocr", "asr", "hashtags")


def _field_texts(items: Sequence[TextItem], name: str) -> list[str]:
    if name == "hashtags":
        return [" ".join(_HASHTAG.findall(item.title)) for item in items]
    return [getattr(item, name) for item in items]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


class StackedBinaryHead:
    """P(violative) from per-field logistic regressions combined by a meta logistic regression.

    Everything is fitted on the training items only: each field's C by the log-loss of its
    out-of-fold predictions, the meta-learner on those out-of-fold scores as logits (never on scores
    of items a field model was trained on, which would be overconfident).
    """

    def __init__(self, config: Stage1Config, random_state: int = 0) -> None:
        self.config = config
        self.random_state = random_state
        self.vectorizers: dict[str, _FieldVectorizer] = {}
        self.models: dict[str, LogisticRegression] = {}
        self.meta = LogisticRegression(C=config.meta_c, max_iter=1000)
        # log(frames) of an item whose frame count is unknown: the training items' mean; None when
        # no training item had a count (then the signal is left out).
        self.frames_fill: float | None = None

    def _vectorizer(self, name: str) -> _FieldVectorizer:
        if name == "hashtags":
            return _FieldVectorizer(1.0, token_pattern=r"\S+", min_df=self.config.min_df)  # noqa: S106
        return _FieldVectorizer(1.0, analyzer="char_wb", ngram_range=self.config.ngram_range, min_df=self.config.min_df)

    def fit(self, items: Sequence[TextItem], y: np.ndarray, folds: int) -> StackedBinaryHead:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        splits = list(splitter.split(np.zeros(len(y)), y))
        scores = []
        for name in _STACK_FIELDS:
            vectorizer = self._vectorizer(name)
            x = vectorizer.fit_transform(_field_texts(items, name))
            if x.shape[1] == 0:
                continue  # e.g. no hashtags anywhere: nothing to learn from this field
            best_c, best_loss, best_scores = self.config.stack_cs[0], math.inf, np.zeros(len(y))
            for c in self.config.stack_cs:
                model = LogisticRegression(C=c, class_weight="balanced", max_iter=3000)
                oof = cross_val_predict(model, x, y, cv=splits, method="predict_proba")[:, 1]
                loss = log_loss(y, oof, labels=[0, 1])
                if loss < best_loss:
                    best_c, best_loss, best_scores = c, loss, _logit(oof)
            scores.append(best_scores)
            model = LogisticRegression(C=best_c, class_weight="balanced", max_iter=3000)
            self.vectorizers[name] = vectorizer
            self.models[name] = model.fit(x, y)
        if not scores:
            raise ModerationError("Stage 1 found no usable text in the training items.")
        known = [math.log(item.frames) for item in items if item.frames > 0]
        if self.config.frames_signal and known:
            self.frames_fill = float(np.mean(known))
            scores.append(self._frames_column(items))
        self.meta.fit(np.column_stack(scores), y)
        return self

    def _frames_column(self, items: Sequence[TextItem]) -> np.ndarray:
        fill = self.frames_fill or 0.0
        return np.array([math.log(item.frames) if item.frames > 0 else fill for item in items])

    def field_scores(self, items: Sequence[TextItem]) -> np.ndarray:
        columns = [
            self.models[name].decision_function(vectorizer.transform(_field_texts(items, name)))
            for name, vectorizer in self.vectorizers.items()
        ]
        if getattr(self, "frames_fill", None) is not None:  # models saved before the signal lack it
            columns.append(self._frames_column(items))
        return np.column_stack(columns)

    def predict_proba(self, items: Sequence[TextItem]) -> np.ndarray:
        return self.meta.predict_proba(self.field_scores(items))


@dataclass
class Stage1Classifier:
    """A fitted stage-1 model; ``labels[0]`` is the safe label."""

    labels: list[str]
    safe_label: str
    config: Stage1Config
    features: Stage1Features
    binary: Any
    multiclass: Any | None
    violation_labels: list[str] = field(default_factory=list)

    def predict_proba(self, items: Sequence[TextItem]) -> np.ndarray:
        """Calibrated probabilities, one row per item, columns in ``labels`` order, rows sum to 1."""
        x = self.features.transform(items)
        with threadpool_limits(limits=1):
            if isinstance(self.binary, StackedBinaryHead):
                p_violative = self.binary.predict_proba(items)[:, 1]
            else:
                p_violative = self.binary.predict_proba(x)[:, 1]
            proba = self.multiclass.predict_proba(x) if self.multiclass is not None else None
        out = np.zeros((len(items), len(self.labels)))
        out[:, 0] = 1.0 - p_violative
        if not self.violation_labels:
            return out
        if self.multiclass is None or proba is None:
            conditional = np.ones((len(items), 1))
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

    def p_violative(self, probabilities: np.ndarray) -> np.ndarray:
        return 1.0 - probabilities[:, 0]

    def predict(self, items: Sequence[TextItem]) -> tuple[list[str], np.ndarray]:
        """Predicted label per item and the probability matrix it came from.

        Violative when P(violative) > 0.5 (calibrated, so this is the accuracy-optimal cut); the tag is
        then the most likely violation.
        """
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
) -> Stage1Classifier:
    """Fit stage 1 on labelled items. Needs both safe and violative examples.

    ``label_order`` (e.g. the policy's labels) fixes the output columns; labels seen in training but
    missing from it are appended.
    """
    config = config or Stage1Config()
    if config.binary_head not in ("stacked", "joint"):
        raise ValueError(f"unknown binary head {config.binary_head!r}")
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

    features = Stage1Features(config)
    x = features.fit_transform(items)
    # One BLAS thread: these problems are tiny, and threaded BLAS on a busy host is up to 50x slower.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        binary: Any
        stack_folds = min(config.stack_folds, n_violative, n_safe)
        if config.binary_head == "stacked" and stack_folds >= 2:
            binary = StackedBinaryHead(config, random_state).fit(items, y_binary, stack_folds)
        else:
            base = LogisticRegression(C=config.binary_c, class_weight="balanced", max_iter=3000)
            folds = min(config.calibration_folds, n_violative, n_safe)
            if folds >= 2:
                binary = CalibratedClassifierCV(base, method="sigmoid", cv=folds).fit(x, y_binary)
            else:
                binary = base.fit(x, y_binary)
        multiclass = None
        violative = y_binary == 1
        if len(violation_labels) > 1:
            # Trained on violative items only: it answers "which violation", the binary head answers "whether".
            multiclass = LogisticRegression(
                C=config.multiclass_c,
                class_weight="balanced" if config.multiclass_balanced else None,
                solver="newton-cg",
                max_iter=3000,
                random_state=random_state,
            )
            multiclass.fit(x[violative], y[violative])
    return Stage1Classifier(
        labels=[safe_label] + [t for t in order[1:] if t in set(y) or t in (label_order or [])],
        safe_label=safe_label,
        config=config,
        features=features,
        binary=binary,
        multiclass=multiclass,
        violation_labels=violation_labels,
    )


@dataclass(frozen=True)
class Route:
    """Per item: its uncertainty (normalised entropy, 0..1) and whether it goes to stage 2."""

    uncertainty: np.ndarray
    escalate: np.ndarray

    @property
    def auto_share(self) -> float:
        return float((~self.escalate).mean()) if len(self.escalate) else 0.0


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Entropy of each row divided by log(k): 0 for a certain distribution, 1 for a uniform one.

    A 1-D array is read as P(violative) of a binary distribution.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim == 1:
        p = np.stack([1.0 - p, p], axis=1)
    k = p.shape[1]
    if k < 2:
        return np.zeros(p.shape[0])
    clipped = np.clip(p, 1e-12, 1.0)
    entropy = -(np.where(p > 0, p * np.log(clipped), 0.0)).sum(axis=1)
    return np.clip(entropy / math.log(k), 0.0, 1.0)


def cascade_route(probabilities: np.ndarray, threshold: float | None = None) -> Route:
    """Escalate items whose uncertainty is above ``threshold`` (default: settings.CASCADE_ESCALATE_ENTROPY).

    ``probabilities`` is P(violative) per item (1-D) or a distribution per row; routing on the binary
    distribution is what the cascade uses, since stage 2 is asked "is this a violation" first.
    """
    if threshold is None:
        from django.conf import settings

        threshold = settings.CASCADE_ESCALATE_ENTROPY
    if not 0.0 <= threshold <= 1.0:
        raise ModerationError(f"The escalation threshold must be between 0 and 1 (got {threshold}).")
    uncertainty = normalised_entropy(probabilities)
    return Route(uncertainty=uncertainty, escalate=uncertainty > threshold)


def artifact_path(name: str) -> Path:
    from django.conf import settings

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise ModerationError("A cascade model name may use letters, digits, '.', '_' and '-' only.")
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
        # Our own artifact under MODELS_DIR, written by stage1_save; never a user-supplied file.
        classifier = joblib.load(path)  # noqa: S301
    except FileNotFoundError as exc:
        raise ModerationError(f"The cascade model file {path} is missing; train it again.") from exc
    if not isinstance(classifier, Stage1Classifier):
        raise ModerationError(f"{path} is not a stage-1 cascade model.")
    return classifier


# --- Stored models: training from trusted labels, loading, predicting ---------------------------


def text_item_for_video(video: Any) -> TextItem:
    """A video as stage 1 sees it: imported text if any, else the pipeline's transcript."""
    asr = video.asr_text or " ".join(s.text for s in video.segments.all())
    return TextItem(title=video.title or "", ocr=video.ocr_text or "", asr=asr, frames=video.sampled_frames or 0)


def labelled_items() -> tuple[list[Any], list[str]]:
    """Every video with a trusted label; a human review's label wins over an imported one."""
    from moderation.review.models import ItemLabel

    chosen: dict[int, Any] = {}
    rows = ItemLabel.objects.select_related("video").order_by("video_id", "created_at")
    for row in rows:
        current = chosen.get(row.video_id)
        if current is None or row.source == ItemLabel.Source.REVIEW:
            chosen[row.video_id] = row
    return [r.video for r in chosen.values()], [r.label for r in chosen.values()]


def cascade_train(*, name: str, threshold: float | None = None, config: Stage1Config | None = None) -> Any:
    """Train stage 1 on every labelled item in the database, save it and make it the active cascade model.

    Retraining under an existing name replaces that model. Raises ModerationError when there are not
    enough labels of both kinds.
    """
    from django.conf import settings
    from django.db import transaction

    from moderation.inference.cascade_models import CascadeModel
    from moderation.policies.models import PolicyVersion
    from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy

    policy = PolicyVersion.objects.filter(policy__slug="kuaimod", is_active=True).first()
    taxonomy = policy.taxonomy if policy else kuaimod_taxonomy()
    safe_label = policy.safe_label if policy else SAFE_LABEL
    order = [safe_label] + [tag["key"] for major in taxonomy for tag in major.get("tags", [])]
    threshold = settings.CASCADE_ESCALATE_ENTROPY if threshold is None else threshold
    if not 0.0 <= threshold <= 1.0:
        raise ModerationError(f"The escalation threshold must be between 0 and 1 (got {threshold}).")

    path = artifact_path(name)
    videos, labels = labelled_items()
    classifier = stage1_fit(
        [text_item_for_video(v) for v in videos], labels, safe_label=safe_label, label_order=order, config=config
    )
    stage1_save(classifier, path)
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    with transaction.atomic():
        CascadeModel.objects.select_for_update().filter(is_active=True).exclude(name=name).update(is_active=False)
        model, _ = CascadeModel.objects.update_or_create(
            name=name,
            defaults={
                "artifact_path": str(path),
                "labels": classifier.labels,
                "metrics": {"label_counts": counts},
                "escalate_threshold": threshold,
                "trained_on": len(labels),
                "policy_version": policy,
                "is_active": True,
            },
        )
    logger.info("cascade model %s trained on %s labelled items", name, len(labels))
    return model


def cascade_threshold_set(*, threshold: float) -> Any:
    """Change the active stage-1 model's escalation threshold; no retraining. Items decided from now
    on are routed by it (the worker reads it with the model for every item)."""
    from moderation.inference.cascade_models import CascadeModel

    if not 0.0 <= threshold <= 1.0:
        raise ModerationError(f"The escalation threshold must be between 0 and 1 (got {threshold}).")
    model = CascadeModel.objects.filter(is_active=True).first()
    if model is None:
        raise ModerationError("No stage-1 model is active: train one first.")
    model.escalate_threshold = threshold
    model.save(update_fields=["escalate_threshold"])
    logger.info("cascade model %s: escalation threshold set to %s", model.name, threshold)
    return model


def cascade_model_active() -> Any | None:
    from moderation.inference.cascade_models import CascadeModel

    return CascadeModel.objects.filter(is_active=True).first()


@dataclass(frozen=True)
class Stage1Verdict:
    label: str
    p_violative: float
    uncertainty: float
    escalate: bool
    probabilities: dict[str, float]


def cascade_predict(*, model: Any, items: Sequence[TextItem]) -> list[Stage1Verdict]:
    """Stage-1 verdicts of a stored cascade model: label, probabilities and whether to escalate."""
    classifier = stage1_load(model.artifact_path)
    labels, proba = classifier.predict(items)
    route = cascade_route(classifier.p_violative(proba), model.escalate_threshold)
    return [
        Stage1Verdict(
            label=labels[i],
            p_violative=float(1.0 - proba[i, 0]),
            uncertainty=float(route.uncertainty[i]),
            escalate=bool(route.escalate[i]),
            probabilities={label: float(p) for label, p in zip(classifier.labels, proba[i], strict=True)},
        )
        for i in range(len(items))
    ]
