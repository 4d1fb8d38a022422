from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Count, Max, Q

from moderation.inference.cascade_models import CascadeModel
from moderation.inference.models import Decision
from moderation.inference.stage1.inputs import TextItem, stage1_input
from moderation.policies.models import PolicyVersion
from moderation.review.models import ItemLabel
from moderation.review.selectors import item_label_map, item_labels_trusted


def cascade_model_active() -> CascadeModel | None:
    return CascadeModel.objects.filter(is_active=True).first()


@dataclass
class Stage1TrainingSet:
    items: list[TextItem]
    labels: list[str]
    safe_label: str
    label_order: list[str]
    policy_version: PolicyVersion | None
    watermark: datetime | None  # the newest trusted label among them


def cascade_training_set() -> Stage1TrainingSet:
    """Every video with a trusted label (the one ``item_labels_trusted`` picks), as stage 1 reads it:
    the same ``stage1_input`` of the same ``content_bundle_for`` the serving backend gets."""
    from moderation.inference.services import content_bundle_for
    from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy

    policy = PolicyVersion.objects.filter(policy__slug="kuaimod", is_active=True).first()
    taxonomy = policy.taxonomy if policy else kuaimod_taxonomy()
    safe_label = policy.safe_label if policy else SAFE_LABEL
    order = [safe_label] + [tag["key"] for major in taxonomy for tag in major.get("tags", [])]
    watermark = ItemLabel.objects.aggregate(newest=Max("created_at"))["newest"]  # before reading: none is missed
    rows = list(item_labels_trusted().select_related("video").prefetch_related("video__segments", "video__keyframes"))
    return Stage1TrainingSet(
        items=[stage1_input(content_bundle_for(row.video, with_feedback=False)) for row in rows],
        labels=[row.label for row in rows],
        safe_label=safe_label,
        label_order=order,
        policy_version=policy,
        watermark=watermark,
    )


def cascade_new_labels(*, model: CascadeModel) -> int:
    """Trusted labels written after the newest one ``model`` was trained on."""
    labels = ItemLabel.objects.all()
    if model.label_watermark is not None:
        labels = labels.filter(created_at__gt=model.label_watermark)
    return labels.count()


@dataclass
class CascadeCurve:
    """Stage 1's risk–coverage curve: accuracy of what it would auto-decide against the share it
    would auto-decide, one point per confidence cut. ``source`` says where the evidence came from."""

    points: list[dict[str, Any]]
    source: str  # "reviewed" (decisions with a trusted label) or "held_out" (the training items' inner folds)
    n: int


def cascade_curve(*, model: CascadeModel | None = None, limit: int = 5000) -> CascadeCurve:
    """From the latest ``limit`` reviewed items stage 1 scored once there are ``CASCADE_MIN_REVIEWED``
    of them; before that, the active model's held-out curve from training. Recomputed on every call, so
    it follows the reviews as they arrive."""
    import numpy as np

    from moderation.inference.stage1.routing import risk_coverage

    model = model or cascade_model_active()
    rows = list(
        Decision.objects.filter(cascade_p_violative__isnull=False)
        .order_by("-created_at")
        .values_list("video_id", "cascade_p_violative", "policy_version__safe_label")[:limit]
    )
    labels = item_label_map(video_ids={video_id for video_id, _, _ in rows})
    seen: set[int] = set()
    scored = []
    for video_id, p, safe_label in rows:
        if video_id in labels and video_id not in seen:  # the latest decision of each item
            seen.add(video_id)
            scored.append((p, labels[video_id] != safe_label))
    if len(scored) >= settings.CASCADE_MIN_REVIEWED:
        p_violative = np.array([p for p, _ in scored])
        violative = np.array([v for _, v in scored])
        return CascadeCurve(risk_coverage(p_violative, (p_violative > 0.5) == violative), "reviewed", len(scored))
    held_out = (model.metrics or {}).get("held_out_curve", []) if model else []
    return CascadeCurve(list(held_out), "held_out", model.trained_on if model else 0)


THRESHOLD_PREVIEW = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def cascade_dashboard(*, limit: int = 5000) -> dict[str, Any]:
    """Escalation rate and per-stage accuracy of the cascade over its recent decisions.

    Accuracy is measured against trusted labels (adjudication > review > import) where an item
    has one: binary (violative or not) and exact label.
    """
    qs = Decision.objects.filter(cascade_stage__isnull=False)
    counts = qs.aggregate(total=Count("id"), stage1=Count("id", filter=Q(cascade_stage=1)))
    total, stage1 = counts["total"], counts["stage1"]
    recent = list(
        qs.order_by("-created_at").values(
            "video_id", "cascade_stage", "label", "is_violation", "policy_version__safe_label", "cascade_uncertainty"
        )[:limit]
    )
    labels = item_label_map(video_ids=[r["video_id"] for r in recent])
    stages: dict[int, dict[str, Any]] = {}
    for stage in (1, 2):
        rows = [r for r in recent if r["cascade_stage"] == stage and r["video_id"] in labels]
        binary = sum(1 for r in rows if r["is_violation"] == (labels[r["video_id"]] != r["policy_version__safe_label"]))
        exact = sum(1 for r in rows if r["label"] == labels[r["video_id"]])
        stages[stage] = {
            "labelled": len(rows),
            "binary_accuracy": binary / len(rows) if rows else None,
            "exact_accuracy": exact / len(rows) if rows else None,
        }
    uncertainties = [r["cascade_uncertainty"] for r in recent if r["cascade_uncertainty"] is not None]
    # What each threshold would have escalated of these recent items (stage 1 scored them all).
    preview = (
        [
            {"threshold": t, "escalated": sum(1 for u in uncertainties if u > t) / len(uncertainties)}
            for t in THRESHOLD_PREVIEW
        ]
        if uncertainties
        else []
    )
    return {
        "threshold_preview": preview,
        "scored": len(uncertainties),
        "total": total,
        "stage1": stage1,
        "stage2": total - stage1,
        "escalation_rate": (total - stage1) / total if total else None,
        "stages": stages,
        "active_model": CascadeModel.objects.filter(is_active=True).first(),
        "models": list(CascadeModel.objects.all()[:20]),
    }
