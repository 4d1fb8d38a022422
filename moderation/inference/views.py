from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.inference.impact import ImpactPreviewRunning, policy_impact_preview, policy_impact_preview_shown
from moderation.inference.selectors import cascade_dashboard, cascade_training_latest, cascade_training_wait
from moderation.policies.selectors import DEFAULT_IMPACT_SAMPLE, policy_version_get
from workbench.form_routes import post_only
from workbench.numbers import typed_number
from workbench.roles import Perm, permission_required


@permission_required(Perm.MANAGE_TRAINING)
def cascade(request: HttpRequest) -> HttpResponse:
    if request.htmx and request.GET.get("part") == "training":  # type: ignore[attr-defined]
        # Polled while a training is queued or running; once it ended, the whole page reloads (new model, curves).
        training = cascade_training_latest()
        stats = {"training": training, "training_wait": cascade_training_wait(training=training)}
        response = render(request, "moderation/inference/cascade.html#training", {"stats": stats})
        if training is None or not training.is_open:
            response["HX-Refresh"] = "true"
        return response
    if request.htmx and request.GET.get("part") == "curves":  # type: ignore[attr-defined]
        return render(request, "moderation/inference/cascade.html#curves", _dashboard_context())
    # A refused form redirected here (POST-redirect-GET: a reload shows the page again, it does not re-send the
    # form); the refusal is shown once, beside the form, with what was typed.
    refused = request.session.pop(_REFUSED_SESSION_KEY, None) or {}
    context = _dashboard_context(**refused)
    for form, why in refused.items():
        if form != "train" and context["stats"]["active_model"] is None:
            messages.error(request, why["error"])  # no model, no form to show the error beside
    return render(request, "moderation/inference/cascade.html", context)


_REFUSED_SESSION_KEY = "cascade_refused"


def _dashboard_context(**refused: dict[str, str]) -> dict[str, Any]:
    """``refused``: per form ("train", "target", "threshold"), what the admin typed and why it was refused, so the
    page the refusal redirects to keeps the typed value beside the error, not the stored one."""
    return {"stats": cascade_dashboard(), "min_reviewed": settings.CASCADE_MIN_REVIEWED, "refused": refused}


def _refused(request: HttpRequest, form: str, typed: str, exc: ModerationError, **kept: str) -> HttpResponse:
    """Back to the dashboard (so a reload does not send the form again), which shows the refusal once beside
    the form with what was typed. ``kept``: the form's other fields as typed (the training form's name, which box
    was refused)."""
    request.session[_REFUSED_SESSION_KEY] = {form: {"typed": typed.strip()[:40], "error": str(exc), **kept}}
    return redirect("moderation:cascade")


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def cascade_train(request: HttpRequest) -> HttpResponse:
    """Queue a stage-1 training (default queue); the dashboard shows its state until it is done.

    A refusal goes back to the dashboard, which shows the name and target as typed and the reason beside the
    form (as the target and threshold boxes do), not the stored values."""
    from moderation.inference.services import cascade_artifact_path, cascade_training_request

    name = (request.POST.get("name") or "stage1").strip()
    raw = request.POST.get("threshold", "").strip()
    raw_target = request.POST.get("target_accuracy", "").strip()
    asked = timezone.now()
    field = ""
    try:
        field = "name"
        cascade_artifact_path(name)
        field = "target_accuracy"
        threshold = _threshold(raw) if raw else None
        target = _target(raw_target) if raw_target and threshold is None else None
        field = ""  # what the service refuses now (too few labels) is about the data, not a box
        training = cascade_training_request(
            name=name,
            threshold=threshold,
            target_accuracy=target,
            by=request.user,  # type: ignore[arg-type]
        )
    except ModerationError as exc:
        return _refused(request, "train", raw_target, exc, name=name[:100], field=field)
    else:
        if training.created_at >= asked:  # this click queued it
            messages.success(
                request, f"Stage 1 “{training.name}” is queued for training; this page shows when it is done."
            )
        else:
            messages.info(
                request,
                f"A stage-1 training (“{training.name}”, {training.get_status_display()}) is already under way: "
                "it was not started twice. This page shows when it is done.",
            )
    return redirect("moderation:cascade")


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def cascade_off(request: HttpRequest) -> HttpResponse:
    from moderation.inference.services import cascade_switch_off

    try:
        model = cascade_switch_off(by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Stage 1 “{model.name}” is switched off: every item goes straight to the serving model. "
            "Train stage 1 again to switch one on.",
        )
    return redirect("moderation:cascade")


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def cascade_threshold(request: HttpRequest) -> HttpResponse:
    from moderation.inference.services import cascade_threshold_set

    typed = request.POST.get("threshold", "")
    try:
        model = cascade_threshold_set(threshold=_threshold(typed), by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        return _refused(request, "threshold", typed, exc)
    messages.success(
        request, f"Stage 1 “{model.name}” now escalates items above uncertainty {model.escalate_threshold:.2f}."
    )
    return redirect("moderation:cascade")


def _threshold(raw: str) -> float:
    """The form's threshold as a number between 0 and 1; the refusal names what was typed ("2" was
    reported as "got 2.0", "1e400" as "got inf"), as the target's does."""
    value = typed_number(raw)  # "0,35" too (workbench.numbers)
    if value is None:
        raise ModerationError("The escalation threshold must be a number between 0 and 1.")
    if not 0.0 <= value <= 1.0:
        raise ModerationError(f"The escalation threshold must be between 0 and 1; “{raw.strip()[:40]}” is not.")
    return value


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def cascade_target(request: HttpRequest) -> HttpResponse:
    from moderation.inference.selectors import cascade_target_row
    from moderation.inference.services import cascade_target_set
    from moderation.inference.stage1.routing import accuracy_percent

    typed = request.POST.get("target_accuracy", "")
    try:
        target = _target(typed)
        model = cascade_target_set(target_accuracy=target, by=request.user)  # type: ignore[arg-type]
    except ModerationError as exc:
        return _refused(request, "target", typed, exc)
    row = cascade_target_row(model=model)  # the risk–coverage numbers the line under the curve says
    messages.success(
        request,
        f"Stage 1 “{model.name}” now auto-decides where the expected accuracy is at least "
        f"{accuracy_percent(target)} (escalation threshold {model.escalate_threshold:.2f})"
        + (f": at {row['target_label']}, {row['consequence']}." if row else "."),
    )
    return redirect("moderation:cascade")


def _target(raw: str) -> float:
    """A target accuracy as typed: 0.92 or 92 (percent); the range rule (``check_target``) names what was
    typed, since a value read as a percentage is a different number (1.5 typed is 0.015).

    Kept to the tenth of a percent the dashboard shows (``accuracy_percent``): "50.000000001" routed by
    0.50000000001 and came back into the box as that float, while the curve said 50%."""
    from moderation.inference.stage1.routing import check_target

    typed = raw.strip()
    value = typed_number(typed.rstrip("%"))  # "0,92" and "92,5 %" too (workbench.numbers)
    if value is None:
        raise ModerationError("The target accuracy must be a number, e.g. 0.92.")
    fraction = value / 100 if value > 1 else value
    check_target(fraction, typed=typed)
    return round(fraction, 3)


# --- A draft's impact: it runs models, so it lives here (a policy's model choice goes through training's
# release gate: training/views.py policy_model_choose) --------------------------------------------------


@permission_required(Perm.EDIT_POLICY)
def policy_version_impact(request: HttpRequest, pk: int) -> HttpResponse:
    """GET shows the kept run (or that none is kept, or that one is being computed); it never runs the model, also
    with the old ``?refresh=1`` of a bookmarked "Run again". POST (CSRF-checked) runs it: one run per draft content
    at a time, a repeat within a minute with nothing decided since shows the kept one. Without htmx the POST
    redirects to the GET (a reload does not run it again)."""
    version = policy_version_get(version_id=pk)
    source = request.POST if request.method == "POST" else request.GET
    try:
        sample_size = int(source.get("n") or 0) or DEFAULT_IMPACT_SAMPLE  # clamped by the preview
    except ValueError:
        sample_size = DEFAULT_IMPACT_SAMPLE
    if request.method == "POST":
        try:
            preview = policy_impact_preview(draft=version, user=request.user, sample_size=sample_size, refresh=True)
        except ImpactPreviewRunning as exc:
            if not request.htmx:  # type: ignore[attr-defined]
                messages.info(request, str(exc))
                return redirect(f"{request.path}?n={sample_size}")
            preview = policy_impact_preview_shown(draft=version, user=request.user, sample_size=sample_size)
        if not request.htmx:  # type: ignore[attr-defined]
            return redirect(f"{request.path}?n={preview.sample_size}")
    elif request.method in ("GET", "HEAD"):
        preview = policy_impact_preview_shown(draft=version, user=request.user, sample_size=sample_size)
    else:
        return HttpResponseNotAllowed(["GET", "POST"])
    context = {"policy": version.policy, "version": version, "preview": preview}
    if request.htmx:  # type: ignore[attr-defined]
        return render(request, "moderation/policies/policy_impact.html#impact", context)
    return render(request, "moderation/policies/policy_impact.html", context)
