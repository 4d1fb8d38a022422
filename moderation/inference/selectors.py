from __future__ import annotations

from typing import Any

from django.db.models import Count, Q

from moderation.inference.cascade_models import CascadeModel
from moderation.inference.models import Decision
from moderation.review.models import ItemLabel

# Which trusted label wins when an item has several.
_LABEL_PRIORITY: dict[str, int] = {
    ItemLabel.Source.IMPORT: 0,
    ItemLabel.Source.REVIEW: 1,
    ItemLabel.Source.ADJUDICATION: 2,
}


def trusted_labels(video_ids: list[int]) -> dict[int, str]:
    best: dict[int, tuple[int, str]] = {}
    for video_id, source, label in ItemLabel.objects.filter(video_id__in=video_ids).values_list(
        "video_id", "source", "label"
    ):
        rank = _LABEL_PRIORITY.get(source, 0)
        if video_id not in best or rank >= best[video_id][0]:
            best[video_id] = (rank, label)
    return {video_id: label for video_id, (_, label) in best.items()}


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
    labels = trusted_labels([r["video_id"] for r in recent])
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
