"""CoT correction screens for labelers."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotation import selectors, services
from annotation.errors import AnnotationError, CorrectionConflict
from annotation.models import CotCorrection
from moderation.inference.models import Decision
from moderation.policies.selectors import policy_label_groups
from moderation.review.selectors import cot_stages_for_display, evidence_times
from moderation.review.views import media_revealed
from workbench.roles import Perm, permission_required


def _user(request: HttpRequest) -> User:
    # The permission decorator already turned anonymous users away.
    return cast(User, request.user)


@permission_required(Perm.CORRECT_COT)
def correction_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.correction_candidates(), 50).get_page(request.GET.get("page"))
    return render(request, "annotation/correction_list.html", {"page": page})


def _edit_context(
    request: HttpRequest,
    decision: Decision,
    *,
    typed: dict[str, str] | None = None,
    typed_label: str | None = None,
    conflict: CotCorrection | None = None,
) -> dict[str, Any]:
    correction: CotCorrection | None = getattr(decision, "correction", None)
    if conflict is not None:
        correction = conflict
    saved_text = {s.get("key"): s.get("text", "") for s in (correction.stages if correction else [])}
    theirs = {s.get("key"): s.get("text", "") for s in conflict.stages} if conflict else {}
    segments = list(decision.video.segments.all())
    times = evidence_times(keyframes=list(decision.video.keyframes.all()), segments=segments)
    rows = []
    for stage in cot_stages_for_display(decision.cot, times=times):
        key = stage["key"]
        rows.append(
            {
                **stage,
                "original": stage["text"],
                "value": (typed or {}).get(key, saved_text.get(key, stage["text"])),
                "theirs": theirs.get(key),
            }
        )
    label = typed_label or (correction.label if correction else decision.label)
    return {
        "decision": decision,
        "video": decision.video,
        "correction": correction,
        "conflict": conflict,
        "rows": rows,
        "label": label,
        "label_groups": policy_label_groups(version=decision.policy_version),
        "model_label_name": decision.policy_version.label_names().get(decision.label, ""),
        "base_revision": correction.revision if correction else 0,
        "segments": segments,
        "reveal": media_revealed(request),
    }


@permission_required(Perm.CORRECT_COT)
def correction_edit(request: HttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_for_correction(decision_id=decision_id)
    if request.method != "POST":
        return render(request, "annotation/correction_edit.html", _edit_context(request, decision))

    keys = [s["key"] for s in cot_stages_for_display(decision.cot)]
    typed = {k: request.POST[f"stage-{k}"] for k in keys if f"stage-{k}" in request.POST}
    label = request.POST.get("label", "")
    try:
        base_revision = int(request.POST.get("base_revision", ""))
    except ValueError:
        base_revision = -1  # a form without a revision can never overwrite silently
    try:
        correction = services.cot_correction_save(
            decision=decision, author=_user(request), stages=typed, label=label, base_revision=base_revision
        )
    except CorrectionConflict as exc:
        messages.error(request, str(exc))
        ctx = _edit_context(request, decision, typed=typed, typed_label=label, conflict=exc.current)
        return render(request, "annotation/correction_edit.html", ctx, status=409)
    except AnnotationError as exc:
        messages.error(request, str(exc))
        ctx = _edit_context(request, decision, typed=typed, typed_label=label)
        return render(request, "annotation/correction_edit.html", ctx, status=400)
    changed = len(correction.diff)
    messages.success(request, f"Saved revision {correction.revision} ({changed} stage(s) changed from the model).")
    return redirect("annotation:correction_edit", decision_id=decision.pk)
