"""Labeler reads: which decisions to correct, and one decision with its correction."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from moderation.inference.models import Decision


def correction_candidates() -> QuerySet[Decision]:
    """Decisions a labeler can correct, latest first, with video and any correction joined."""
    return (
        Decision.objects.exclude(cot=[])
        .select_related("video", "policy_version", "model_version", "correction__author")
        .order_by("-created_at", "-pk")
    )


def decision_for_correction(*, decision_id: int) -> Decision:
    return get_object_or_404(
        Decision.objects.select_related(
            "video", "policy_version__policy", "model_version", "correction__author"
        ).prefetch_related("video__segments", "video__keyframes"),
        pk=decision_id,
    )
