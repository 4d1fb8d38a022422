"""The student (MatchLite role): a small, fast classifier over pair features.

Trained from labelled pairs — human verdicts (``PairReview``) or the teacher's parsed judgements
(distillation) — it gives each pair a reproduction score (the probability of "reproduction") and a
3-way label. Standardised features into a multinomial logistic regression: microseconds per pair on
a CPU, and stable on the few hundred labels a team has in its first weeks. Persisted with joblib
under ``MODELS_DIR/repro/student.joblib`` (written atomically; reloaded when the file changes).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.reproduction.features import FEATURE_NAMES, feature_vector

LABELS = ("reproduction", "derivative", "unrelated")
MIN_EXAMPLES = 4

_lock = threading.Lock()
_loaded: dict[str, tuple[float, Student]] = {}


def student_path() -> Path:
    return Path(settings.MODELS_DIR) / "repro" / "student.joblib"


@dataclass(frozen=True)
class Prediction:
    score: float  # P(reproduction)
    label: str
    probabilities: dict[str, float]


class Student:
    def __init__(self, bundle: dict[str, Any]) -> None:
        self.model = bundle["model"]
        self.classes: list[str] = list(bundle["classes"])
        self.name: str = bundle["name"]
        self.meta = {k: v for k, v in bundle.items() if k != "model"}

    def predict(self, rows: list[dict[str, Any]]) -> list[Prediction]:
        import numpy as np

        if not rows:
            return []
        X = np.asarray([feature_vector(r) for r in rows], dtype=np.float64)
        probs = np.ones((len(rows), 1)) if len(self.classes) == 1 else self.model.predict_proba(X)
        out = []
        for row in probs:
            p = {c: float(row[i]) for i, c in enumerate(self.classes)}
            out.append(
                Prediction(
                    score=round(p.get("reproduction", 0.0), 6),
                    label=max(p, key=lambda c: p[c]),
                    probabilities={c: round(v, 6) for c, v in p.items()},
                )
            )
        return out

    def predict_one(self, features: dict[str, Any]) -> Prediction:
        return self.predict([features])[0]


def student_fit(examples: list[tuple[dict[str, Any], str]], *, source: str) -> Student:
    """Fit a student on ``(features, label)`` examples (pure: writes nothing)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    examples = [(f, lbl) for f, lbl in examples if lbl in LABELS]
    if len(examples) < MIN_EXAMPLES:
        raise ModerationError(f"Not enough labelled pairs to train the student ({len(examples)}; need {MIN_EXAMPLES}).")
    X = np.asarray([feature_vector(f) for f, _ in examples], dtype=np.float64)
    y = [lbl for _, lbl in examples]
    classes = sorted(set(y))
    if len(classes) == 1:
        model: Any = None
    else:
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
        model.fit(X, y)
        classes = [str(c) for c in model.classes_]
    name = f"matchlite-{source}-{timezone.now():%Y%m%d%H%M%S}"
    return Student(
        {"model": model, "classes": classes, "name": name, "source": source, "n": len(examples),
         "features": list(FEATURE_NAMES), "trained_at": timezone.now().isoformat(),
         "label_counts": {c: y.count(c) for c in sorted(set(y))}}
    )  # fmt: skip


def student_save(student: Student, path: Path | None = None) -> Path:
    import joblib

    path = path or student_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".student-", suffix=".joblib", dir=path.parent)
    os.close(fd)
    joblib.dump({"model": student.model, **student.meta}, tmp)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    return path


def student_load(path: Path | None = None) -> Student | None:
    """The saved student, or None when none has been trained; reloaded when the file changes."""
    import joblib

    path = path or student_path()
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    with _lock:
        cached = _loaded.get(str(path))
        if cached is None or cached[0] != mtime:
            _loaded[str(path)] = (mtime, Student(joblib.load(path)))
        return _loaded[str(path)][1]


def training_examples(*, source: str) -> list[tuple[dict[str, Any], str, int]]:
    """Labelled pairs: ``(features, label, candidate id)`` from human verdicts or the teacher's judgements."""
    from moderation.reproduction.models import PairReview, TeacherJudgement

    if source == "human":
        rows = PairReview.objects.select_related("candidate").order_by("pk")
        return [(r.candidate.features, r.verdict, r.candidate_id) for r in rows if r.candidate.features]
    if source == "teacher":
        seen: set[int] = set()
        out = []
        for j in TeacherJudgement.objects.select_related("candidate").exclude(label="").order_by("-created_at"):
            if j.candidate_id not in seen and j.candidate.features:
                seen.add(j.candidate_id)
                out.append((j.candidate.features, j.label, j.candidate_id))
        return out
    raise ModerationError(f"Unknown training source {source!r}: use 'human' or 'teacher'.")


def student_train(*, source: str = "human", path: Path | None = None, rescore: bool = True) -> Student:
    """Train the student from labelled pairs (``source``: "human" verdicts or "teacher" judgements, i.e.
    distillation), save it, and (``rescore``) re-score the unreviewed pairs so the queue follows it."""
    started = time.perf_counter()
    examples = training_examples(source=source)
    student = student_fit([(f, lbl) for f, lbl, _ in examples], source=source)
    student.meta["fit_seconds"] = round(time.perf_counter() - started, 4)
    student_save(student, path)
    if rescore and path is None:
        from moderation.reproduction.services import candidates_rescore

        candidates_rescore()
    return student
