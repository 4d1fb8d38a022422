"""CoT correction screens for labelers."""

from __future__ import annotations

import json
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils import timezone
from django.views.decorators.http import require_GET

from annotation import selectors, services
from annotation.errors import AnnotationError, CorrectionConflict, StageRefused
from annotation.forms import LabelStudioQueueExportForm, LabelStudioTagExportForm
from annotation.labelstudio import (
    EXPORT_LIMIT,
    TagVideos,
    labelstudio_queue_export,
    labelstudio_queue_items,
    labelstudio_tag_export,
    labelstudio_tag_videos,
)
from annotation.models import CotCorrection, Tag2CotTask
from moderation.feedback.selectors import feedback_stats_for
from moderation.inference.backends import STAGES
from moderation.inference.models import Decision
from moderation.labels.selectors import item_label_standing
from moderation.media.models import Video
from moderation.media.selectors import video_media_for_display
from moderation.media.services import video_media_verify
from moderation.media.shield import media_revealed
from moderation.policies.selectors import policy_label_groups
from moderation.review.models import ReviewQueue
from moderation.review.selectors import cot_stages_for_display
from workbench.filters import ALL
from workbench.form_routes import post_only
from workbench.forms import nul_checked_by_form
from workbench.pagination import WindowPaginator
from workbench.roles import Perm, permission_required

LIST_PAGE = 50  # rows a page on the correction, Tag2CoT and adjudication lists


def _user(request: HttpRequest) -> User:
    # The permission decorator already turned anonymous users away.
    return cast(User, request.user)


@permission_required(Perm.CORRECT_COT)
def correction_list(request: HttpRequest) -> HttpResponse:
    status_filter = selectors.CORRECTION_STATUS_FILTER.read(request.GET.get("status"))
    by_filter = selectors.CORRECTION_AUTHOR_FILTER.read(request.GET.get("by"))
    status, by = status_filter.value, by_filter.value
    # The rule is applied to a window of the decisions, newest first (``WindowPaginator``): the same list without a
    # reader (``user=None``: no rule, and no "by" either, a superset) is what the window is read from.
    page = WindowPaginator(
        selectors.correction_candidates(status=status, user=request.user, by=by),
        LIST_PAGE,
        window=selectors.correction_candidates(status=status),
    ).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status,
        "by": by,
        "status_filter": status_filter,
        "by_problem": by_filter.problem,
        "empty": _CORRECTIONS_EMPTY[status],
    }
    code = max(status_filter.http_status, by_filter.http_status)
    return render(request, "annotation/correction_list.html", context, status=code)


# What an empty list says, by status filter: under a filter, "No model decisions to correct yet" read as
# if there were none at all.
_CORRECTIONS_EMPTY = {
    "": "No model decisions to correct yet.",
    "none": "Every decision has a correction: none is left uncorrected.",
    CotCorrection.Status.DRAFT: "No correction is a draft.",
    CotCorrection.Status.SUBMITTED: "No correction is waiting for a second labeler.",
    CotCorrection.Status.ACCEPTED: "No correction has been accepted yet.",
    CotCorrection.Status.REJECTED: "No correction has been rejected.",
}


def _media_context(request: HttpRequest, video: Video) -> dict[str, Any]:
    """The shared media panels' context (``moderation/_video_media.html``), as on the review screen."""
    media = video_media_for_display(video=video)
    check = video_media_verify(video=video, keyframes=media["keyframes"], by=request.user)
    return {**media, "reveal": media_revealed(request), "media_check": check}


def _edit_context(
    request: HttpRequest,
    decision: Decision,
    *,
    typed: dict[str, str] | None = None,
    typed_label: str | None = None,
    conflict: CotCorrection | None = None,
    stage_error: StageRefused | None = None,
) -> dict[str, Any]:
    correction: CotCorrection | None = getattr(decision, "correction", None)
    if conflict is not None:
        correction = conflict
    saved_text = {s.get("key"): s.get("text", "") for s in (correction.stages if correction else [])}
    theirs = {s.get("key"): s.get("text", "") for s in conflict.stages} if conflict else {}
    media = _media_context(request, decision.video)
    rows = []
    for stage in cot_stages_for_display(services.correctable_stages(decision), times=media["times"]):
        key = stage["key"]
        value = (typed or {}).get(key, saved_text.get(key, stage["text"]))
        other = theirs.get(key)
        # Only a stage whose saved-meanwhile text differs from what this labeler has is a conflict.
        error = str(stage_error) if stage_error is not None and stage_error.stage == key else ""
        rows.append(
            {
                **stage,
                "original": stage["text"],
                "value": value,
                "theirs": other if other != value else None,
                "error": error,
            }
        )
    label = typed_label or (correction.label if correction else decision.label)
    context: dict[str, Any] = {
        **media,
        "decision": decision,
        "correction": correction,
        "conflict": conflict,
        "rows": rows,
        "label": label,
        "label_groups": policy_label_groups(version=decision.policy_version),
        "model_label_name": decision.policy_version.label_names().get(decision.label, ""),
        # What a person said the video is (the label training reads): a correction should not contradict it unseen.
        "human_label": item_label_standing(video_id=decision.video_id),
        "feedback": feedback_stats_for(video_id=decision.video_id),
        "base_revision": correction.revision if correction else 0,
        # Once this one is sent on (not a draft), where to go next: the list was the only way on.
        "next_uncorrected": selectors.correction_next_uncorrected(user=request.user, after=decision)
        if correction is not None and correction.status != CotCorrection.Status.DRAFT and conflict is None
        else None,
        # A second labeler who accepted or rejected one (or is looking at one) was left on it, with an edit form and a
        # link to the next decision to correct: the next correction waiting for their review was only on the list.
        "next_to_review": selectors.correction_next_to_review(user=request.user, after=decision)
        if correction is not None
        and conflict is None
        and correction.status != CotCorrection.Status.DRAFT
        and correction.author_id != request.user.pk
        else None,
        "can_review": correction is not None
        and conflict is None
        and correction.status == CotCorrection.Status.SUBMITTED
        and correction.author_id != request.user.pk,
    }
    if context["can_review"] and correction is not None:
        context["review_diff"] = selectors.correction_diff_for_review(correction=correction)
        # The label is what training reads: a revision that moves it says so beside the stage changes.
        if correction.label != decision.label:
            names = decision.policy_version.label_names()
            context["review_label_change"] = {
                "before": decision.label,
                "before_name": names.get(decision.label, ""),
                "after": correction.label,
                "after_name": names.get(correction.label, ""),
            }
    return context


@permission_required(Perm.CORRECT_COT)
def correction_edit(request: HttpRequest, decision_id: int) -> HttpResponse:
    decision = selectors.decision_for_correction(decision_id=decision_id, user=request.user)
    if request.method != "POST":
        ctx = _edit_context(request, decision)
        ctx["review_reason"] = request.session.pop(_review_reason_key(decision.pk), "")
        return render(request, "annotation/correction_edit.html", ctx)

    keys = [s["key"] for s in cot_stages_for_display(services.correctable_stages(decision))]
    typed = {k: request.POST[f"stage-{k}"] for k in keys if f"stage-{k}" in request.POST}
    label = request.POST.get("label", "")
    try:
        base_revision = int(request.POST.get("base_revision", ""))
    except ValueError:
        base_revision = -1  # a form without a revision can never overwrite silently
    try:
        correction = services.cot_correction_save(
            decision=decision,
            author=_user(request),
            stages=typed,
            label=label,
            base_revision=base_revision,
            submit=request.POST.get("action", "submit") != "draft",
        )
    except CorrectionConflict as exc:
        messages.error(request, str(exc))
        ctx = _edit_context(request, decision, typed=typed, typed_label=label, conflict=exc.current)
        return render(request, "annotation/correction_edit.html", ctx, status=409)
    except StageRefused as exc:
        # Said on the stage itself (the page's message names it too), with everything typed kept.
        messages.error(request, str(exc))
        ctx = _edit_context(request, decision, typed=typed, typed_label=label, stage_error=exc)
        return render(request, "annotation/correction_edit.html", ctx, status=400)
    except AnnotationError as exc:
        messages.error(request, str(exc))
        ctx = _edit_context(request, decision, typed=typed, typed_label=label)
        return render(request, "annotation/correction_edit.html", ctx, status=400)
    changed = len(correction.diff)
    if getattr(correction, "unchanged", False):
        messages.info(
            request,
            f"Nothing new to save: revision {correction.revision} ({correction.get_status_display().lower()}, "
            f"by {correction.author}) already holds exactly this text.",
        )
        return redirect("annotation:correction_edit", decision_id=decision.pk)
    what = (
        f"{changed} stage{pluralize(changed)} changed from the model"
        if changed
        else f"no stage text changed from the model; label {correction.label}"
    )
    if correction.status == CotCorrection.Status.SUBMITTED:
        # "Saved revision 2 as submitted" left a first-day labeler wondering what happens now, with the form still open.
        messages.success(
            request,
            f"Submitted revision {correction.revision} for review ({what}): another labeler accepts or rejects it "
            "next; until then you may still change it here.",
        )
    else:
        messages.success(
            request, f"Saved revision {correction.revision} as {correction.get_status_display().lower()} ({what})."
        )
    return redirect("annotation:correction_edit", decision_id=decision.pk)


def _revision(request: HttpRequest) -> int:
    try:
        return int(request.POST.get("base_revision", ""))
    except ValueError:
        return -1


def _accepted_text(correction: CotCorrection, decision: Decision) -> str:
    """What accepting a revision did and what follows (as ``training.data`` and ``cot_correction_save`` do it):
    "Accepted revision 2." alone left the reviewer asking whether it was in use now and how to take it back."""
    relabel = ""
    if correction.label != decision.label:  # ``review_decision_relabelled``: the review screen says so
        relabel = f" Review screens show its label {correction.label} beside the model's ({decision.label or 'none'})."
    return (
        f"Accepted revision {correction.revision}: it is this decision's reasoning for training now. The next SFT or "
        "DPO dataset built (Training page or a retrain rule) uses it; datasets built before keep what they had. The "
        f"model's decision itself does not change.{relabel} To take it back, edit it here and save: the new revision "
        "is no longer accepted, and later builds leave it out until another labeler accepts it."
    )


def _review_reason_key(decision_id: int) -> str:
    return f"correction-review-reason-{decision_id}"


@post_only
@permission_required(Perm.CORRECT_COT)
def correction_review(request: HttpRequest, decision_id: int) -> HttpResponse:
    """A second labeler accepts the submitted correction, or rejects it with a reason.

    Always answers with a redirect to the correction screen (POST-redirect-GET), refusals too: a reload
    there never resends the form, so a rejection is neither lost nor sent twice. A refused rejection's
    typed reason is kept in the session and put back into the form once."""
    decision = selectors.decision_for_correction(decision_id=decision_id, user=request.user)
    correction: CotCorrection | None = getattr(decision, "correction", None)
    back = redirect("annotation:correction_edit", decision_id=decision.pk)
    if correction is None:
        messages.error(request, "There is no correction to review yet.")
        return back
    reason = request.POST.get("reason", "")
    try:
        if request.POST.get("action") == "accept":
            services.cot_correction_accept(correction=correction, by=_user(request), base_revision=_revision(request))
            messages.success(request, _accepted_text(correction, decision))
        else:
            services.cot_correction_reject(
                correction=correction, by=_user(request), base_revision=_revision(request), reason=reason
            )
            messages.success(request, f"Rejected revision {correction.revision}; the author sees your reason.")
    except AnnotationError as exc:
        messages.error(request, str(exc))
        if reason.strip():
            request.session[_review_reason_key(decision.pk)] = reason
        back["Location"] += "#correction-review"
    return back


# --- Tag2CoT ------------------------------------------------------------------------------------


@permission_required(Perm.CORRECT_COT)
def tag2cot_list(request: HttpRequest) -> HttpResponse:
    status = selectors.TAG2COT_FILTER.read(request.GET.get("status"))
    tasks = selectors.tag2cot_tasks(status=status.value, user=request.user)
    window = selectors.tag2cot_tasks(status=status.value)  # without a reader: before the rule (``WindowPaginator``)
    page = WindowPaginator(tasks, LIST_PAGE, window=window).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "status": status.value,
        "status_filter": status,
        "open_limit": settings.TAG2COT_OPEN_LIMIT,
        "drafts_waiting": selectors.tag2cot_drafts_waiting(),
    }
    return render(request, "annotation/tag2cot_list.html", context, status=status.http_status)


@post_only
@permission_required(Perm.CORRECT_COT)
def tag2cot_queue(request: HttpRequest) -> HttpResponse:
    opening = services.tag2cot_tasks_queue(user=request.user)
    # Counted as the labeler may see them: tasks opened on videos of a restricted queue are its groups' to see.
    created, left = opening.seen, opening.left.n
    if not created and not left and not selectors.tag2cot_tasks(status=ALL, user=request.user).exists():
        # Said as below with no task anywhere, it sent the labeler to look under Open and Done for tasks never made.
        messages.info(
            request,
            "No Tag2CoT tasks to queue: on every human-labelled item the model's reasoning reaches the human "
            "label. An override, an adjudication or an imported label that differs from the model makes one.",
        )
    elif not created and not left:
        messages.info(
            request,
            "No new Tag2CoT tasks: every human-labelled item whose model reasoning does not reach its label "
            "already has a task (listed under Open or Done).",
        )
    elif not created:
        messages.warning(request, _tag2cot_bound_words(opening, opened="No new Tag2CoT task was queued"))
    elif left:
        opened = f"Queued {created} new Tag2CoT task{pluralize(created)}"
        messages.success(request, _tag2cot_bound_words(opening, opened=opened))
    else:
        messages.success(request, f"Queued {created} new Tag2CoT task{pluralize(created)}.")
    return redirect("annotation:tag2cot_list")


def _tag2cot_bound_words(opening: services.Tag2CotOpening, *, opened: str) -> str:
    """Why a press opened fewer tasks than items are due one: the bound, and the drafts it counted."""
    left, limit, waiting = opening.left.n, opening.limit, opening.waiting
    due = f"{opening.left} more item{pluralize(left)} {pluralize(left, 'is,are')} due a task"
    if waiting:
        return (
            f"{opened}; {due}: at most {limit:,} model drafts may wait on the inference queue at once "
            f"(TAG2COT_OPEN_LIMIT), which live decisions share, and {waiting:,} from earlier presses "
            f"{pluralize(waiting, 'was,were')} still waiting. Press again once their drafts have come back."
        )
    return (
        f"{opened}; {due}: one press queues at most {limit:,} (TAG2COT_OPEN_LIMIT), so that their "
        "drafts do not hold up live decisions. Press again for the next ones."
    )


@permission_required(Perm.CORRECT_COT)
def tag2cot_write(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.tag2cot_task_get(task_id=pk, user=request.user)
    typed: dict[str, str] = {}
    status = 200
    refused: StageRefused | None = None
    if request.method == "POST":
        typed = {key: request.POST.get(f"stage-{key}", "") for key, _title in STAGES}
        try:
            services.tag2cot_write(task=task, author=_user(request), stages=typed)
        except AnnotationError as exc:
            # A stage's refusal is said on that stage too (focused), as on the correction screen.
            refused = exc if isinstance(exc, StageRefused) else None
            messages.error(request, str(exc))
            status = 400
        else:
            # Which task, where it went, and what it is for: the list opens on the open tasks, where the one just
            # written is gone; the next SFT or DPO build reads it (``training.data``), ones built before do not.
            messages.success(
                request,
                f"Task #{task.pk}: reasoning for “{task.target_label}” saved; it is listed under Done. The next "
                "SFT or DPO dataset built (Training page or a retrain rule) uses it; datasets built before keep "
                "what they had.",
            )
            return redirect("annotation:tag2cot_list")
    ctx = _media_context(request, task.video)
    stages = cot_stages_for_display(task.stages, times=ctx["times"])
    rows = [
        {
            **stage,
            "value": typed.get(stage["key"], stage["text"]),
            "error": str(refused) if refused is not None and refused.stage == stage["key"] else "",
        }
        for stage in stages
    ]
    ctx.update(
        task=task,
        rows=rows,
        decision=task.decision,
        label_name=task.policy_version.label_names().get(task.target_label, ""),
        model_stages=cot_stages_for_display(task.decision.cot, times=ctx["times"]),
        # Viewing changes nothing: the task is taken with the page's button (tag2cot_claim, a POST).
        held_by_me=task.status == Tag2CotTask.Status.OPEN and task.assigned_to_id == request.user.pk,
        held_by_other=task.assigned_to_id != request.user.pk and task.lease_live(),
    )
    ctx["may_write"] = ctx["held_by_me"]
    # Where the writer starts: the first stage still blank. After "Write this reasoning" the page reloaded with
    # that button gone and nothing focused, so the keyboard started again from the top of the page.
    ctx["start_at"] = (
        next((row["key"] for row in rows if not row["value"].strip()), "")
        if ctx["may_write"] and refused is None
        else ""
    )
    return render(request, "annotation/tag2cot_write.html", ctx, status=status)


@post_only
@permission_required(Perm.CORRECT_COT)
def tag2cot_claim(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.tag2cot_task_get(task_id=pk, user=request.user)
    try:
        services.tag2cot_claim(task=task, user=_user(request))
    except AnnotationError as exc:
        messages.error(request, str(exc))
    return redirect("annotation:tag2cot_write", pk=pk)


@post_only
@permission_required(Perm.CORRECT_COT)
def tag2cot_release(request: HttpRequest, pk: int) -> HttpResponse:
    task = selectors.tag2cot_task_get(task_id=pk, user=request.user)
    try:
        services.tag2cot_release(task=task, user=_user(request))
    except AnnotationError as exc:
        messages.error(request, str(exc))
        return redirect("annotation:tag2cot_write", pk=pk)
    messages.success(request, f"Tag2CoT #{task.pk} released: another labeler may write it.")
    return redirect("annotation:tag2cot_list")


# --- adjudication of user-feedback disagreements --------------------------------------------


@permission_required(Perm.REVIEW_VIDEO)
def adjudication_list(request: HttpRequest) -> HttpResponse:
    status = selectors.ADJUDICATION_FILTER.read(request.GET.get("status"))
    adjudications = selectors.adjudications(status=status.value, user=request.user)
    window = selectors.adjudications(status=status.value)  # without a reader: before the rule (``WindowPaginator``)
    page = WindowPaginator(adjudications, LIST_PAGE, window=window).get_page(request.GET.get("page"))
    context = {"page": page, "status": status.value, "status_filter": status}
    return render(request, "annotation/adjudication_list.html", context, status=status.http_status)


@permission_required(Perm.REVIEW_VIDEO)
def adjudication_detail(request: HttpRequest, pk: int) -> HttpResponse:
    adjudication = selectors.adjudication_get(adjudication_id=pk, user=request.user)
    status = 200
    if request.method == "POST":
        try:
            decided = services.adjudication_decide(
                adjudication=adjudication,
                by=_user(request),
                label=request.POST.get("label", ""),
                note=request.POST.get("note", ""),
            )
        except AnnotationError as exc:
            messages.error(request, str(exc))
            status = 400
        else:
            # Which label was recorded, for which video: the list it lands on no longer shows the item.
            label = decided.outcome_label
            name = decided.decision.policy_version.label_names().get(label, "")
            messages.success(
                request,
                f"Adjudication #{adjudication.pk} decided: {name + ' (' + label + ')' if name else label} is now the "
                f"label of “{adjudication.video.title or '(untitled)'}”.",
            )
            return redirect("annotation:adjudication_list")
    decision = adjudication.decision
    ctx = _media_context(request, adjudication.video)
    ctx.update(
        adjudication=adjudication,
        decision=decision,
        stages=cot_stages_for_display(decision.cot, times=ctx["times"]),
        label_groups=policy_label_groups(version=decision.policy_version),
        model_label_name=decision.policy_version.label_names().get(decision.label, ""),
        feedback=feedback_stats_for(video_id=adjudication.video_id),
    )
    return render(request, "annotation/adjudication_detail.html", ctx, status=status)


# --- Label Studio export ------------------------------------------------------------------------

EXPORT_FORMS: dict[str, type[LabelStudioTagExportForm] | type[LabelStudioQueueExportForm]] = {
    "tags": LabelStudioTagExportForm,
    "queue": LabelStudioQueueExportForm,
}
DOWNLOADS = ("tasks", "config")


def _export_form(
    request: HttpRequest, what: str, *, data: Any = None, initial: dict[str, Any] | None = None
) -> LabelStudioTagExportForm | LabelStudioQueueExportForm:
    """The export form ``what``; a queue form offers only the queues this user may see."""
    if what == "queue":
        return LabelStudioQueueExportForm(data, initial=initial, prefix=what, user=request.user)
    return LabelStudioTagExportForm(data, initial=initial, prefix=what)


def _export_preview(
    what: str, form: LabelStudioTagExportForm | LabelStudioQueueExportForm, *, user: Any
) -> dict[str, Any]:
    """How many items the chosen export would hold (a count, not the export itself)."""
    since, until = form.window()
    if isinstance(form, LabelStudioTagExportForm):
        count = labelstudio_tag_videos(
            which=form.cleaned_data["which"], tag_ids=form.tag_ids(), since=since, until=until, user=user
        ).count()
    else:
        count = labelstudio_queue_items(
            queue=form.cleaned_data["queue"].slug, since=since, until=until, user=user
        ).count()
    preview = {"what": what, "count": count, "capped": count > EXPORT_LIMIT, "dated": bool(since or until)}
    if isinstance(form, LabelStudioQueueExportForm):
        preview["queue"] = form.cleaned_data["queue"].name
    return preview


def _export_download(
    what: str, form: LabelStudioTagExportForm | LabelStudioQueueExportForm, download: str, *, user: Any
) -> HttpResponse:
    since, until = form.window()
    data = form.cleaned_data
    if isinstance(form, LabelStudioTagExportForm):
        export = labelstudio_tag_export(
            which=data["which"],
            base_url=data["base_url"],
            tag_ids=form.tag_ids(),
            since=since,
            until=until,
            user=user,
        )
    else:
        export = labelstudio_queue_export(
            queue=data["queue"].slug, base_url=data["base_url"], since=since, until=until, user=user
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    if download == "config":
        response = HttpResponse(export.config, content_type="application/xml; charset=utf-8")
        name = f"labelstudio-{what}-config-{stamp}.xml"
    else:
        body = json.dumps(export.tasks, ensure_ascii=False, indent=1)
        response = HttpResponse(body, content_type="application/json; charset=utf-8")
        name = f"labelstudio-{what}-tasks-{stamp}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@nul_checked_by_form
@require_GET
@permission_required(Perm.CORRECT_COT)
def labelstudio_export(request: HttpRequest) -> HttpResponse:
    """Content tags (``Taxonomy``) or a review queue's open items (``Choices``) as Label Studio tasks:
    the form's changes preview how many items match (htmx), its buttons download the tasks JSON or
    the labeling config. Bad input is said beside the form (400), never a 500."""
    base_url = request.build_absolute_uri("/").rstrip("/")
    initial = {
        "tags": {"base_url": base_url, "which": TagVideos.REVIEWED},
        "queue": {"base_url": base_url, "queue": ReviewQueue.DEFAULT_SLUG},
    }
    forms: dict[str, Any] = {key: _export_form(request, key, initial=initial[key]) for key in EXPORT_FORMS}
    what = request.GET.get("what", "")
    previews: dict[str, dict[str, Any]] = {}
    for key in EXPORT_FORMS:
        # What each form would export as it first shows (a count), so the screen is not blank until a change.
        shown = _export_form(request, key, data={f"{key}-{name}": value for name, value in initial[key].items()})
        previews[key] = (
            _export_preview(key, shown, user=request.user) if key != what and shown.is_valid() else {"what": key}
        )
    status = 200
    if what in EXPORT_FORMS:
        form = forms[what] = _export_form(request, what, data=request.GET)
        download = request.GET.get("download", "")
        preview: dict[str, Any] = {"what": what}
        if download and download not in DOWNLOADS:
            preview["error"] = f"Unknown download “{download}”: choose the tasks (JSON) or the labeling config."
        elif not form.is_valid():
            preview["invalid"] = True
        else:
            try:
                if download:
                    return _export_download(what, form, download, user=request.user)
                preview = _export_preview(what, form, user=request.user)
            except AnnotationError as exc:
                preview["error"] = str(exc)
        if "error" in preview or "invalid" in preview:
            status = 400
        previews[what] = preview
        if request.htmx:  # type: ignore[attr-defined]
            # The live count under the form, or why not (a 200: htmx swaps only 2xx), and each field's problem
            # beside that field (out of band) as the user changes the form, as a submitted form shows them.
            context = {"p": preview, "form": form, "limit": EXPORT_LIMIT, "oob": True}
            return render(request, "annotation/labelstudio_export.html#preview", context)
    elif what:
        previews["tags"] = {"what": "tags", "error": f"Unknown export “{what}”: choose content tags or a review queue."}
        status = 400
    exports = [{"what": key, "form": forms[key], "p": previews[key]} for key in EXPORT_FORMS]
    return render(
        request, "annotation/labelstudio_export.html", {"exports": exports, "limit": EXPORT_LIMIT}, status=status
    )
