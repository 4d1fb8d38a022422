"""Browser screens of the training app: datasets and jobs (admins only)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET
from django_htmx.middleware import HtmxDetails

from moderation.errors import ModerationError
from moderation.inference.selectors import model_version_get
from moderation.models import ModelVersion, Policy
from training import artifacts, selectors
from training.errors import GateRefused, GpuQueueFull, TrainingError
from training.forms import EvaluationStartForm, TagEventsExportForm, TrainingJobStartForm
from training.models import PreferenceDataset
from training.release import policy_model_choose as choose
from training.services import preference_dataset_build, sft_dataset_build, training_job_cancel, training_job_start
from training.tag_data import tag_events_download as tag_events_download_build
from workbench.form_routes import post_only
from workbench.forms import nul_checked_by_form
from workbench.roles import Perm, permission_required
from workbench.storage import is_object_storage, playback_url
from workbench.text import row_id


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


def _user(request: HttpRequest) -> User:
    # permission_required has already turned anonymous visitors away.
    return cast(User, request.user)


LIST_PAGE = 25  # datasets and jobs per page on the training screen (each list pages on its own)


def _render_list(
    request: HttpRequest,
    form: TrainingJobStartForm,
    *,
    status: int = 200,
    dataset_error: str = "",
    dataset_typed: dict[str, str] | None = None,
    tag_events_form: TagEventsExportForm | None = None,
    tag_events_error: str = "",
) -> HttpResponse:
    datasets = Paginator(selectors.dataset_list(), LIST_PAGE).get_page(request.GET.get("datasets_page"))
    jobs = Paginator(selectors.job_list(), LIST_PAGE).get_page(request.GET.get("jobs_page"))
    context = {
        "datasets": datasets,
        "jobs": jobs,
        # Each list's paging links keep the other list's page: paging the jobs opened the datasets at page 1 again.
        "datasets_keep": f"jobs_page={jobs.number}" if jobs.number > 1 else "",
        "jobs_keep": f"datasets_page={datasets.number}" if datasets.number > 1 else "",
        "form": form,
        "rules": selectors.retrain_rules(),
        # A refused dataset build: the reason beside its form, the kind and share chosen kept.
        "dataset_error": dataset_error,
        "dataset_typed": dataset_typed or {"kind": "dpo", "eval_share": "0", "rejected_from": ""},
        "serving_model": selectors.serving_model_version(),
        "tag_events_form": tag_events_form or TagEventsExportForm(prefix="events"),
        "tag_events_error": tag_events_error,
    }
    return render(request, "training/job_list.html", context, status=status)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def job_list(request: HttpRequest) -> HttpResponse:
    # "Start again" on a failed job's screen: the form filled in from that job, to change what failed.
    again = row_id(request.GET.get("from_job"))  # "²" or a 30-digit number: no job, not a 500
    job = selectors.job_find(pk=again) if again is not None else None
    # A refused dataset build redirected here (POST-redirect-GET, as the cascade dashboard's forms: a reload shows
    # the page again, it does not ask to re-send the form); the reason is shown once beside the form, choices kept.
    refused = request.session.pop(_DATASET_REFUSED_SESSION_KEY, None) or {}
    typed = refused.get("typed") or None
    # A build that succeeded redirected here with its kind (``?kind=sft``): the form keeps it, so building SFT
    # records again (after more corrections) is not quietly a DPO build because the selector went back to DPO.
    built_kind = request.GET.get("kind", "")
    if typed is None and built_kind in PreferenceDataset.Kind.values:
        typed = {"kind": built_kind, "eval_share": "0", "rejected_from": ""}
    return _render_list(
        request,
        TrainingJobStartForm(initial=TrainingJobStartForm.initial_from(job) if job else None),
        dataset_error=str(refused.get("error", "")),
        dataset_typed=typed,
    )


_DATASET_REFUSED_SESSION_KEY = "dataset_build_refused"


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def dataset_build(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    build = sft_dataset_build if kind == "sft" else preference_dataset_build
    typed_share = request.POST.get("eval_share", "")
    try:
        eval_share = float(typed_share or 0)
    except ValueError:
        eval_share = -1.0  # reported by the service as out of range
    rejected_from = request.POST.get("rejected_from", "")
    options: dict[str, Any] = {}
    asked = timezone.now()
    try:
        # A forged or stale form is refused rather than quietly built as something nobody chose.
        if kind not in PreferenceDataset.Kind.values:
            said = f"Unknown dataset kind “{kind}”" if kind else "No dataset kind was chosen"
            raise TrainingError(f"{said}: choose DPO preference pairs or SFT chat records.")
        if rejected_from not in ("", "serving"):
            raise TrainingError(
                f"Unknown source of DPO pairs “{rejected_from}”: choose every human disagreement "
                "or mistakes of the serving model."
            )
        if kind == "dpo" and rejected_from:
            options["rejected_model_version"] = selectors.serving_model_version()
            if options["rejected_model_version"] is None:
                raise TrainingError("No model version is serving yet, so there are no serving-model mistakes.")
        dataset = build(
            created_by=_user(request), name=request.POST.get("name") or None, eval_share=eval_share, **options
        )
    except TrainingError as exc:
        typed = {"kind": kind[:20], "eval_share": typed_share[:40], "rejected_from": rejected_from[:20]}
        request.session[_DATASET_REFUSED_SESSION_KEY] = {"error": str(exc), "typed": typed}
        return redirect(reverse("training:job_list") + "#dataset-error")
    # The train and held-out counts side by side, with the total: "with 1 SFT record (2 held out)" read
    # as one record in all.
    total = dataset.train_count + dataset.eval_count
    what = ("SFT record" if dataset.kind == "sft" else "preference pair") + ("" if total == 1 else "s")
    split = (
        f"{dataset.train_count} to train on, {dataset.eval_count} held out for evaluation"
        if dataset.eval_count
        else "all to train on, none held out"
    )
    if dataset.created_at < asked:
        messages.info(
            request,
            f"Nothing changed since “{dataset.name}” ({total} {what}: {split}) "
            "was built from the same data: no second, identical snapshot was made.",
        )
    else:
        # Which human work it was built from, so a labeler's finished Tag2CoT tasks or accepted corrections are seen
        # to count (the page's dataset table shows totals only).
        sources = " · ".join(f"{name} {n}" for name, n in selectors.dataset_sources(dataset=dataset))
        messages.success(request, f"Built “{dataset.name}”: {total} {what}, {split}. By source: {sources}.")
    return redirect(f"{reverse('training:job_list')}?{urlencode({'kind': dataset.kind})}")


def _start_or_join(
    request: HttpRequest,
    form: Any,
    *,
    start: Callable[[dict[str, Any]], Any],
    page: Callable[[int], HttpResponse],
    joined: Callable[[Any], str],
    detail: str,
) -> HttpResponse:
    """Start what ``form`` asks for (``start`` of its cleaned data: a training job, an evaluation) and open its page.
    The services return the run already open with these settings rather than a second one (``run_open_same``): one
    made before this request is said (``joined``), so the user knows no second run was started. An invalid form or a
    refusal (``TrainingError``) is the form again (``page``), with why, as a 400 (the GPU queues full: 429). A run
    made by this request is confirmed by its page: its progress panel says it is queued, from when and by whom, and
    follows it; a flash message ("Job #1 queued on the train workers…") stayed at the top of the page, the panel
    below polling, after the job had finished."""
    if not form.is_valid():
        return page(400)
    asked_at = timezone.now()
    try:
        run = start(form.cleaned_data)
    except (TrainingError, ModerationError) as exc:  # ModerationError: no active policy version (not bootstrapped)
        form.add_error(None, str(exc))
        # The GPU queues full (MAX_QUEUED_GPU_JOBS) is no fault of the form: 429, as a rate past its limit.
        return page(429 if isinstance(exc, GpuQueueFull) else 400)
    if run.created_at < asked_at:  # the same run was open already (a double click, another tab, a colleague)
        messages.info(request, joined(run))
    return redirect(detail, pk=run.pk)


@nul_checked_by_form
@post_only
@permission_required(Perm.MANAGE_TRAINING)
def job_start(request: HttpRequest) -> HttpResponse:
    form = TrainingJobStartForm(request.POST)
    return _start_or_join(
        request,
        form,
        start=lambda data: training_job_start(
            dataset=data["dataset"],
            created_by=_user(request),
            kind=data["kind"] or None,
            base_model=data["base_model"],
            params=form.params(),
        ),
        page=lambda status: _render_list(request, form, status=status),
        joined=lambda job: (
            f"Job {job.pk} with these settings on “{job.dataset.name}” was already {job.get_status_display().lower()}: "
            "this is it. No second job was started."
        ),
        detail="training:job_detail",
    )


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def job_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    job = selectors.job_get(pk=pk)
    context = {
        "job": job,
        "active": selectors.job_is_active(job),
        "policy": selectors.job_policy_version_shown(job),
        "params": selectors.job_params_shown(job),
        "error": selectors.job_error_shown(job),
        "eta": selectors.job_eta(job),
        "chart": selectors.job_loss_chart(job),
        "reward_chart": selectors.job_chart(job, "reward"),
    }
    template = "training/job_detail.html"
    if request.htmx:
        template += "#progress"
    return render(request, template, context)


@post_only
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
    if dataset.jsonl_path and is_object_storage():
        # The snapshot lives in the object store: a short-lived presigned link, the role check done above.
        return HttpResponseRedirect(playback_url(artifacts.artifact_name(dataset.jsonl_path)))
    path = Path(dataset.jsonl_path) if dataset.jsonl_path else None
    root = (Path(settings.TRAINING_OUTPUT_DIR) / "datasets").resolve()
    if path is None or not path.resolve().is_relative_to(root) or not path.is_file():
        raise Http404("This dataset's export is missing.")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=f"{dataset.kind}-dataset-{dataset.pk}-train.jsonl",
        content_type="application/jsonl",
    )
    return response  # type: ignore[return-value]  # streamed; the decorators only pass it through


@nul_checked_by_form
@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def tag_events_download(request: HttpRequest) -> HttpResponse:
    """The tag reviewers' events as JSONL or a zipped Hugging Face dataset (what ``manage.py
    export_tag_events`` writes), for a tag set and days; bad input is said on the training screen."""
    if not request.GET:  # the address opened by itself (a bookmark): the form, not a list of errors
        return HttpResponseRedirect(reverse("training:job_list") + "#tag-events")
    form = TagEventsExportForm(request.GET, prefix="events")
    if not form.is_valid():
        return _render_list(request, TrainingJobStartForm(), status=400, tag_events_form=form)
    since, until = form.window()
    file_format = form.cleaned_data["file_format"]
    try:
        body, _count = tag_events_download_build(
            file_format=file_format,
            eval_share=form.cleaned_data["eval_share"] or 0.0,
            tag_ids=form.tag_ids(),
            since=since,
            until=until,
            by=_user(request),
            tag_set=form.cleaned_data.get("tag_set"),
        )
    except TrainingError as exc:
        return _render_list(
            request, TrainingJobStartForm(), status=400, tag_events_form=form, tag_events_error=str(exc)
        )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    kind = ("application/jsonl", "jsonl") if file_format == "jsonl" else ("application/zip", "zip")
    response = HttpResponse(body, content_type=kind[0])
    response["Content-Disposition"] = f'attachment; filename="tag-events-{stamp}.{kind[1]}"'
    return response


# --- registry, evaluation, release ------------------------------------------------------------


def _render_models(
    request: HttpRequest,
    form: EvaluationStartForm,
    *,
    status: int = 200,
    only: ModelVersion | None = None,
    problem: str = "",
) -> HttpResponse:
    """The registry and evaluations; ``only``: of that version alone (a job's page links its version here)."""
    context = {
        "rows": selectors.model_versions(only=only),
        "evaluations": selectors.evaluation_list(model_version=only)[:50],
        "form": form,
        "policies": Policy.objects.order_by("name"),
        "only": only,
        "filter_problem": problem,
    }
    return render(request, "training/models.html", context, status=status)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def model_list(request: HttpRequest) -> HttpResponse:
    only, problem = selectors.model_version_filter(raw=request.GET.get("version"))
    # "Evaluate <version>" (a gate's link) chooses the version in the form and opens on it, the registry unfiltered:
    # it reused ``?version=``, which showed the one model's row alone (hwalk22 a16).
    evaluate, evaluate_problem = selectors.model_version_filter(raw=request.GET.get("evaluate"))
    chosen = evaluate or only
    form = EvaluationStartForm(initial={"model_version": chosen.pk} if chosen else None)
    if evaluate is not None:
        form.fields["model_version"].widget.attrs["autofocus"] = True
    problem = problem or evaluate_problem
    return _render_models(request, form, only=only, problem=problem, status=404 if problem else 200)


@nul_checked_by_form
@post_only
@permission_required(Perm.MANAGE_TRAINING)
def evaluation_create(request: HttpRequest) -> HttpResponse:
    from training.evaluation import evaluation_start

    form = EvaluationStartForm(request.POST)
    return _start_or_join(
        request,
        form,
        start=lambda data: evaluation_start(
            model_version=data["model_version"],
            created_by=_user(request),
            eval_set=data["eval_set"],
            file_path=data["file_path"],
            policy_version=data["policy_version"],
        ),
        page=lambda status: _render_models(request, form, status=status),
        joined=lambda run: (
            f"Evaluation {run.pk} of {run.model_version.name} on this set was already "
            f"{run.get_status_display().lower()}: this is it. No second run was started."
        ),
        detail="training:evaluation_detail",
    )


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def evaluation_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    run = selectors.evaluation_get(pk=pk)
    context = {
        "run": run,
        "metric_rows": selectors.evaluation_metric_rows(run),
        "category_rows": selectors.evaluation_category_rows(run),
        "heatmap": selectors.confusion_heatmap(run),
        "active": run.status in ("queued", "running"),
        "ahead": selectors.evaluation_runs_ahead(run=run),
        "progress": selectors.evaluation_progress(run=run),
        "active_policy_version": selectors.policy_version_active_of(run=run),
    }
    template = "training/evaluation_detail.html"
    if request.htmx:
        template += "#result"
    return render(request, template, context)


@require_GET
@permission_required(Perm.MANAGE_TRAINING)
def evaluation_compare(request: HttpRequest) -> HttpResponse:
    from training.evaluation import evaluation_compare as compare

    # "Compare A and B" with one or no run chosen, or the same run twice, is sent back to the list
    # with the reason (it was a "Not found" page whose only link led to the start page).
    a_id, b_id = row_id(request.GET.get("a")), row_id(request.GET.get("b"))
    if a_id is None or b_id is None:
        messages.error(request, "Pick two evaluations to compare: one in column A and one in column B.")
        return redirect(reverse("training:model_list") + "#evaluations")
    if a_id == b_id:
        messages.error(request, f"Evaluation {a_id} is both A and B: pick two different evaluations to compare.")
        return redirect(reverse("training:model_list") + "#evaluations")
    a, b = selectors.evaluation_find(pk=a_id), selectors.evaluation_find(pk=b_id)
    if a is None or b is None:  # it was the bare "There is nothing at this address" page
        missing = f"{a_id} (A)" if a is None else f"{b_id} (B)"
        messages.error(request, f"There is no evaluation {missing}: pick two evaluations to compare.")
        return redirect(reverse("training:model_list") + "#evaluations")
    context = {
        "a": a,
        "b": b,
        "comparison": compare(a, b),
        "heatmap_a": selectors.confusion_heatmap(a),
        "heatmap_b": selectors.confusion_heatmap(b),
    }
    return render(request, "training/compare.html", context)


def _version(pk: int) -> ModelVersion:
    from django.shortcuts import get_object_or_404

    return get_object_or_404(ModelVersion, pk=pk)


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def model_promote(request: HttpRequest, pk: int) -> HttpResponse:
    from moderation.models import Policy
    from training.release import model_version_promote_gated

    version = _version(pk)
    raw = request.POST.get("policy", "")
    policy_id = row_id(raw)
    policy = Policy.objects.filter(pk=policy_id).first() if policy_id is not None else None
    if raw and policy is None:
        messages.error(request, "That policy does not exist.")
        return redirect("training:model_list")
    try:
        model_version_promote_gated(candidate=version, by=_user(request), policy=policy)
    except (TrainingError, ModerationError) as exc:
        messages.error(request, str(exc))
    else:
        where = f"under {policy.name}" if policy else "for every policy without its own model"
        messages.success(request, f"{version.name} now serves new decisions {where}.")
    return redirect("training:model_list")


@post_only
@permission_required(Perm.EDIT_POLICY)
def policy_model_choose(request: HttpRequest, pk: int) -> HttpResponse:
    """The policy page's "Model for this policy": through the release gate, like a promotion."""
    policy = get_object_or_404(Policy, pk=pk)
    raw = request.POST.get("model_version", "")
    model_version = model_version_get(raw) if raw else None
    if raw and model_version is None:
        messages.error(request, "That model version does not exist.")
        return redirect("moderation:policy_detail", pk=pk)
    try:
        serving = choose(policy=policy, model_version=model_version, by=_user(request))
    except (TrainingError, ModerationError) as exc:
        message = str(exc)
        if isinstance(exc, GateRefused) and exc.needs_evaluation and not request.user.has_perm(Perm.MANAGE_TRAINING):
            # A policy editor cannot start evaluations: say who can, not only what is missing.
            message += " Evaluations are started by an admin on Training → Model versions."
        messages.error(request, message)
        if model_version is not None:  # the page keeps the choice selected (not the model serving now)
            url = reverse("moderation:policy_detail", kwargs={"pk": pk})
            return redirect(f"{url}?{urlencode({'model_version': model_version.pk})}")
    else:
        how = "" if model_version else " (the globally serving model)"
        messages.success(request, f"New decisions under {policy.name} will use {serving.name}{how}.")
    return redirect("moderation:policy_detail", pk=pk)


@post_only
@permission_required(Perm.MANAGE_TRAINING)
def model_shadow(request: HttpRequest, pk: int) -> HttpResponse:
    from training.release import shadow_start, shadow_stop

    version = _version(pk)
    try:
        if request.POST.get("action") == "stop":
            shadow_stop(model_version=version, by=_user(request))
            messages.success(request, f"{version.name} left shadow mode.")
        else:
            shadow_start(model_version=version, by=_user(request))
            messages.success(request, f"{version.name} now decides live items in shadow.")
    except TrainingError as exc:
        messages.error(request, str(exc))
    return redirect("training:model_list")
