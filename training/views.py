"""Browser screens of the training app: datasets and jobs (admins only)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from django_htmx.middleware import HtmxDetails

from training import selectors
from training.errors import TrainingError
from training.forms import TrainingJobStartForm
from training.services import preference_dataset_build, training_job_cancel, training_job_start
from workbench.roles import Perm, permission_required


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _user(request: HttpRequest) -> User:
    # permission_required has already turned anonymous visitors away.
    return cast(User, request.user)


def _render_list(request: HttpRequest, form: TrainingJobStartForm, *, status: int = 200) -> HttpResponse:
    context = {"datasets": selectors.dataset_list(), "jobs": selectors.job_list(), "form": form}
    return render(request, "training/job_list.html", context, status=status)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def job_list(request: HttpRequest) -> HttpResponse:
    return _render_list(request, TrainingJobStartForm())


@require_POST
@permission_required(Perm.MANAGE_TRAINING)
def dataset_build(request: HttpRequest) -> HttpResponse:
    try:
        dataset = preference_dataset_build(created_by=_user(request), name=request.POST.get("name") or None)
    except TrainingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Built “{dataset.name}” with {dataset.pair_count} preference pairs.")
    return redirect("training:job_list")


@require_POST
@permission_required(Perm.MANAGE_TRAINING)
def job_start(request: HttpRequest) -> HttpResponse:
    form = TrainingJobStartForm(request.POST)
    if not form.is_valid():
        return _render_list(request, form, status=400)
    try:
        job = training_job_start(
            dataset=form.cleaned_data["dataset"],
            created_by=_user(request),
            base_model=form.cleaned_data["base_model"],
            params={"max_steps": form.cleaned_data["max_steps"]},
        )
    except TrainingError as exc:
        form.add_error(None, str(exc))
        return _render_list(request, form, status=400)
    messages.success(request, f"Job {job.pk} queued.")
    return redirect("training:job_detail", pk=job.pk)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(pk=pk)
    context = {
        "job": job,
        "active": selectors.job_is_active(job),
        "eta": selectors.job_eta(job),
        "chart": selectors.job_loss_chart(job),
    }
    template = "training/job_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


@require_POST
@permission_required(Perm.MANAGE_TRAINING)
def job_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(pk=pk)
    try:
        training_job_cancel(job=job, by=_user(request))
    except TrainingError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Cancel requested for job {job.pk}.")
    return redirect("training:job_detail", pk=job.pk)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def dataset_download(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = selectors.dataset_get(pk=pk)
    path = Path(dataset.jsonl_path) if dataset.jsonl_path else None
    root = (Path(settings.TRAINING_OUTPUT_DIR) / "datasets").resolve()
    if path is None or not path.resolve().is_relative_to(root) or not path.is_file():
        raise Http404("This dataset's export is missing.")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"preference-pairs-{dataset.pk}.jsonl",
        content_type="application/jsonl",
    )
    return response  # type: ignore[return-value]  # streamed; the decorators only pass it through
