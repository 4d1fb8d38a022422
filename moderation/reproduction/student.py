"""The student (MatchLite role): a small, fast classifier over pair features.

Trained from labelled pairs — human verdicts (``PairReview``) or the teacher's parsed judgements
(distillation) — it gives each pair a reproduction score (the probability of "reproduction") and a
3-way label. Standardised features into a multinomial logistic regression: microseconds per pair on
a CPU, and stable on the few hundred labels a team has in its first weeks. Persisted with joblib in
media storage as ``models/repro/student.joblib`` (trained on one worker, scored with on others and on the
web node; written atomically; reloaded when the stored file changes, see ``workbench.storage.artifact_local``).
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
_loaded: dict[str, tuple[int, Student]] = {}


def student_path() -> Path:
    """Where a node kept the student before it went to media storage (read once on upgrade)."""
    return Path(settings.MODELS_DIR) / "repro" / "student.joblib"


def student_artifact_name() -> str:
    from workbench.storage import artifact_name

    return artifact_name("repro/student.joblib")


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


def student_publish(student: Student) -> str:
    """Save the student in media storage for every process (the web node and the other workers); returns
    its stored name. Atomic: a reader loads the old student or the new one."""
    import joblib

    from workbench.storage import artifact_store, scratch_dir

    with scratch_dir("student") as folder:
        local = folder / "student.joblib"
        joblib.dump({"model": student.model, **student.meta}, local)
        return artifact_store(local, student_artifact_name(), move=True)


def student_save(student: Student, path: Path) -> Path:
    """Save the student to the local file ``path`` only (an evaluation's copy); ``student_publish`` shares it."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".student-", suffix=".joblib", dir=path.parent)
    os.close(fd)
    joblib.dump({"model": student.model, **student.meta}, tmp)
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one
    return path


def student_load(path: Path | None = None) -> Student | None:
    """The saved student (``path``, or the one in media storage), or None when none has been trained;
    reloaded when the file changes (the store is asked at most every MODEL_ARTIFACT_CHECK_S)."""
    import joblib

    if path is None:
        from workbench.storage import artifact_local

        found = artifact_local(student_artifact_name(), legacy=student_path())
        if found is None:
            return None
        path = found
    try:
        mtime = path.stat().st_mtime_ns
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
    if path is None:
        student_publish(student)
    else:
        student_save(student, path)
    if rescore and path is None:
        from moderation.reproduction.services import candidates_rescore

        candidates_rescore()
    return student
