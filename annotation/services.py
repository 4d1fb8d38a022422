"""Labeler writes: corrections of a model decision's chain-of-thought."""

from __future__ import annotations

import copy
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from annotation.errors import AnnotationError, CorrectionConflict
from annotation.models import CotCorrection
from moderation.inference.models import Decision


def _clean(text: str) -> str:
    # Browsers send textarea line breaks as CRLF; normalise so an untouched stage is not a change.
    return (text or "").replace("\r\n", "\n").replace("\r", "\n").strip()


@transaction.atomic
def cot_correction_save(
    *,
    decision: Decision,
    author: User,
    stages: dict[str, str],
    label: str,
    base_revision: int,
) -> CotCorrection:
    """Save a labeler's corrected CoT and label for ``decision`` (optimistic concurrency).

    ``base_revision`` is the revision the labeler's form was loaded from (0 when there was no
    correction yet). If someone saved since, the save is refused with ``CorrectionConflict``
    carrying their correction, so no one silently overwrites another labeler's work.

    Stages keep the decision's structure (key, title, evidence); only the text changes. Stages
    not named in ``stages`` keep the model's text. ``diff`` lists the stages whose text now differs
    from the model's original.
    """
    # Lock the decision: it exists even before the first correction does, so it serialises both
    # "first save" and "later save" races.
    locked = Decision.objects.select_for_update().select_related("policy_version").get(pk=decision.pk)
    current = CotCorrection.objects.filter(decision=locked).select_related("author").first()
    current_revision = current.revision if current is not None else 0
    if int(base_revision) != current_revision:
        if current is None:
            raise AnnotationError("This correction changed since you opened it; reload the page and try again.")
        raise CorrectionConflict(
            f"{current.author} saved revision {current.revision} of this correction while you were editing; "
            "their text is shown beside yours. Merge what you need and save again.",
            current=current,
        )

    model_stages = locked.cot if isinstance(locked.cot, list) else []
    known = {s.get("key") for s in model_stages if isinstance(s, dict)}
    unknown = sorted(set(stages) - known)
    if unknown:
        raise AnnotationError(f"Unknown CoT stage(s): {', '.join(unknown)}.")
    names = locked.policy_version.label_names()
    if label not in names:
        raise AnnotationError(f"“{label}” is not a label of policy {locked.policy_version}.")

    new_stages: list[dict[str, Any]] = []
    diff: list[dict[str, str]] = []
    for stage in model_stages:
        if not isinstance(stage, dict):
            continue
        before = stage.get("text", "")
        after = _clean(stages[stage["key"]]) if stage.get("key") in stages else before
        if not after:
            raise AnnotationError(f"Stage “{stage.get('title') or stage.get('key')}” cannot be empty.")
        edited = copy.deepcopy(stage)
        edited["text"] = after
        new_stages.append(edited)
        if after != _clean(before):
            diff.append({"key": stage["key"], "before": before, "after": after})

    if current is None:
        return CotCorrection.objects.create(
            decision=locked, stages=new_stages, label=label, diff=diff, author=author, revision=1
        )
    current.stages = new_stages
    current.label = label
    current.diff = diff
    current.author = author
    current.status = CotCorrection.Status.SUBMITTED
    current.revision = current_revision + 1
    current.save()
    return current
