"""Reads of trusted labels: which one of an item's labels wins."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Case, IntegerField, QuerySet, Value, When

from moderation.labels.models import ItemLabel

# Which trusted label of an item wins when it has several: an adjudication settles a dispute, a human
# review beats the label an import brought. The one place this order is written.
LABEL_PRECEDENCE: tuple[str, ...] = (
    ItemLabel.Source.ADJUDICATION,
    ItemLabel.Source.REVIEW,
    ItemLabel.Source.IMPORT,
)


def item_labels_trusted(
    *, video_ids: Iterable[int] | None = None, labels: Iterable[str] | None = None
) -> QuerySet[ItemLabel]:
    """One trusted label per labelled video, the winner by ``LABEL_PRECEDENCE`` (ties: the newest),
    ordered by video id. ``labels`` keeps only labels a policy knows: an item whose winning label is
    not among them falls back to its next label."""
    qs = ItemLabel.objects.all()
    if video_ids is not None:
        qs = qs.filter(video_id__in=list(video_ids))
    if labels is not None:
        qs = qs.filter(label__in=list(labels))
    rank = Case(
        *[When(source=source, then=Value(i)) for i, source in enumerate(LABEL_PRECEDENCE)],
        default=Value(len(LABEL_PRECEDENCE)),
        output_field=IntegerField(),
    )
    return qs.annotate(precedence=rank).order_by("video_id", "precedence", "-created_at", "-pk").distinct("video_id")


def item_label_map(*, video_ids: Iterable[int] | None = None) -> dict[int, str]:
    """``video_id -> trusted label`` (see ``item_labels_trusted``)."""
    return dict(item_labels_trusted(video_ids=video_ids).values_list("video_id", "label"))


def item_label_standing(*, video_id: int) -> dict[str, Any] | None:
    """The label that stands for a video (``item_labels_trusted``), as screens show it: ``label``, its name in its
    policy version's words (``label_name``, empty when unknown) and where it came from (``source``); ``None``
    when no human or import labelled it."""
    standing = item_labels_trusted(video_ids=[video_id]).select_related("policy_version").first()
    if standing is None:
        return None
    version = standing.policy_version
    return {
        "label": standing.label,
        "label_name": version.label_names().get(standing.label, "") if version is not None else "",
        "source": standing.get_source_display(),
    }
