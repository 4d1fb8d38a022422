"""Stage 1 of the COEF-VQ cascade as a backend: the cheap text classifier trained from labelled
items in the database (moderation/inference/stage1/). It decides confident items itself and
marks uncertain ones for escalation to the VLM (stage 2). sklearn only: cheap on any worker.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from moderation.errors import ModerationError
from moderation.inference.backends import STAGES, BackendResult, ContentBundle
from moderation.inference.stage1.inputs import stage1_input
from moderation.inference.stage1.model import (
    Stage1Classifier,
    stage1_artifact_name,
    stage1_legacy_path,
    stage1_load,
)
from moderation.inference.stage1.routing import cascade_route
from moderation.policies.spec import PolicySpec


class CascadeStage1Backend:
    name = "cascade_stage1"
    _cache: ClassVar[dict[tuple[str, int], Stage1Classifier]] = {}
    _lock = threading.Lock()

    def __init__(self, cascade_name: str) -> None:
        from moderation.inference.cascade_models import CascadeModel

        self.model = CascadeModel.objects.get(name=cascade_name)

    def _classifier(self) -> Stage1Classifier:
        """The model from media storage (trained on another worker), via this node's cache; the store is
        asked again when the row says it was retrained, else at most every MODEL_ARTIFACT_CHECK_S."""
        from workbench.storage import artifact_local

        recorded = Path(self.model.artifact_path)  # an absolute path: a row from before models were shared
        legacy = recorded if recorded.is_absolute() else stage1_legacy_path(self.model.name)
        path = artifact_local(
            stage1_artifact_name(self.model.name), legacy=legacy, hint=self.model.trained_at.isoformat()
        )
        if path is None:
            raise ModerationError(f"The stage-1 model {self.model.name} is missing from storage; train it again.")
        key = (str(path), path.stat().st_mtime_ns)  # retraining under the same name reloads it
        with self._lock:
            if key not in self._cache:
                self._cache[key] = stage1_load(path)
            return self._cache[key]

    def decide_batch(self, contents: list[ContentBundle], policy: PolicySpec) -> list[BackendResult]:
        classifier = self._classifier()
        labels, proba = classifier.predict([stage1_input(c) for c in contents])
        p_violative = classifier.p_violative(proba)
        route = cascade_route(p_violative, self.model.escalate_threshold)
        results = []
        for i, content in enumerate(contents):
            ranked = sorted(zip(classifier.labels, proba[i], strict=True), key=lambda kv: -kv[1])[:3]
            uncertainty = float(route.uncertainty[i])
            escalate = bool(route.escalate[i])
            label = labels[i]
            results.append(
                BackendResult(
                    label=label,
                    is_violation=label != policy.safe_label,
                    confidence=float(max(proba[i])),
                    cot=_stage1_cot(content, ranked, uncertainty, self.model.escalate_threshold, escalate, label),
                    raw_output=", ".join(f"{k}={v:.3f}" for k, v in ranked),
                    uncertainty=uncertainty,
                    escalate=escalate,
                    p_violative=float(p_violative[i]),
                )
            )
        return results


def _stage1_cot(
    content: ContentBundle,
    ranked: list[tuple[str, Any]],
    uncertainty: float,
    threshold: float,
    escalate: bool,
    label: str,
) -> list[dict[str, Any]]:
    speech = " ".join(s.text for s in content.segments).strip()
    texts = {
        "content_extraction": f"Title «{content.title[:160]}»; on-screen text «{' | '.join(content.ocr)[:200]}»; "
        f"speech «{speech[:300]}».",
        "analysis": "Stage-1 text classifier (character n-grams of title, on-screen text and speech); most likely "
        "labels: " + ", ".join(f"{k} ({v:.2f})" for k, v in ranked) + ".",
        "intermediate_check": f"Uncertainty (normalised entropy of the calibrated violative vs non-violative) {uncertainty:.2f} "
        + (
            f"> threshold {threshold:.2f}: escalated to the VLM."
            if escalate
            else f"≤ threshold {threshold:.2f}: decided at stage 1 without the VLM."
        ),
        "user_feedback": ", ".join(f"{k}={v}" for k, v in sorted(content.feedback.items()))
        or "No user-feedback events recorded.",
        "final_judgment": f"Stage-1 label: {label}.",
    }
    return [{"key": key, "title": title, "text": texts[key], "evidence": []} for key, title in STAGES]
