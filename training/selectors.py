"""Reads of the training app: datasets, jobs, and what the job screens show about them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from moderation.models import ModelVersion, PolicyVersion
from training.evaluation import METRIC_LABELS, metric_label
from training.models import (
    EvaluationRun,
    PreferenceDataset,
    RetrainRule,
    ShadowDeployment,
    TrainingJob,
)
from workbench.formatting import metric_text
from workbench.text import row_id

ACTIVE_STATUSES = (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING)


def dataset_list() -> QuerySet[PreferenceDataset]:
    return PreferenceDataset.objects.select_related("created_by").order_by("-created_at")


def dataset_get(*, pk: int) -> PreferenceDataset:
    return get_object_or_404(PreferenceDataset, pk=pk)


def job_list() -> QuerySet[TrainingJob]:
    """Jobs, newest first, for the lists (the training screen's and the API's). Without each job's loss history
    and log tail, which only the job's own page shows: they grow with every logged step, and a list page of 50
    long runs read them all to show none."""
    return (
        TrainingJob.objects.select_related("dataset", "created_by", "model_version")
        .defer("history", "log_tail")
        .order_by("-created_at")
    )


def job_get(*, pk: int) -> TrainingJob:
    return get_object_or_404(
        TrainingJob.objects.select_related("dataset", "created_by", "model_version", "policy_version__policy"), pk=pk
    )


def job_policy_version_shown(job: TrainingJob) -> dict[str, Any] | None:
    """The policy version a job trained on, and the one active now where they differ.

    A job takes its dataset's policy version, by design (the labels it learned from were given under it); shown alone
    ("KuaiMod taxonomy v1" while v2 is active) it read as the job using an old policy by mistake."""
    version = job.policy_version
    if version is None:
        return None
    active = PolicyVersion.objects.filter(policy_id=version.policy_id, is_active=True).first()
    return {"version": version, "active": active if active is not None and active.pk != version.pk else None}


def job_is_active(job: TrainingJob) -> bool:
    return job.status in ACTIVE_STATUSES


def job_find(*, pk: int) -> TrainingJob | None:
    return TrainingJob.objects.filter(pk=pk).first()


def job_params_shown(job: TrainingJob) -> list[tuple[str, str]]:
    """A job's parameters as the job screen lists them: by name, a list as its items ("q_proj, v_proj",
    not a Python list), an empty value as "—" (the trainer's default)."""
    shown = []
    for key, value in sorted((job.params or {}).items()):
        if isinstance(value, list | tuple):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        else:
            text = "" if value is None else str(value)
        shown.append((key, text or "—"))
    return shown


@dataclass(frozen=True)
class JobError:
    """A failed job's error as its screen says it: the message first, the exception's class apart (none for
    the workbench's own readable TrainingError), a long or multi-line message folded after its first line."""

    headline: str
    detail: str
    exception: str


def job_error_shown(job: TrainingJob) -> JobError | None:
    text = (job.error or "").strip()
    if not text:
        return None
    exception = ""
    name, sep, rest = text.partition(": ")
    if (
        sep and name.isidentifier() and name[:1].isupper() and rest.strip()
    ):  # "RuntimeError: ..." as the runner writes it
        exception, text = ("" if name == "TrainingError" else name), rest.strip()
    first, _, more = text.partition("\n")
    if len(first) > 300:
        first, more = first[:300].rsplit(" ", 1)[0] + " …", text
    return JobError(headline=first.strip(), detail=more.strip() and text, exception=exception)


def job_eta(job: TrainingJob) -> timedelta | None:
    """Time left at the pace so far (None before the first step or once the job is over)."""
    if job.status != TrainingJob.Status.RUNNING or not job.started_at or not job.step or not job.total_steps:
        return None
    elapsed = timezone.now() - job.started_at
    remaining = max(job.total_steps - job.step, 0)
    return timedelta(seconds=round(elapsed.total_seconds() / job.step * remaining))


@dataclass(frozen=True)
class LossChart:
    width: int
    height: int
    points: str  # SVG polyline points, already in chart coordinates
    min_loss: float
    max_loss: float
    first_step: int
    last_step: int


def job_loss_chart(job: TrainingJob, *, width: int = 480, height: int = 160, pad: int = 8) -> LossChart | None:
    """The loss curve as SVG polyline coordinates (y grows downwards, so high loss is near the top)."""
    history = [(int(h["step"]), float(h["loss"])) for h in job.history if h.get("loss") is not None]
    if not history:
        return None
    steps = [s for s, _ in history]
    losses = [v for _, v in history]
    lo, hi = min(losses), max(losses)
    s0, s1 = min(steps), max(steps)
    x_span = (s1 - s0) or 1
    y_span = (hi - lo) or 1.0
    inner_w, inner_h = width - 2 * pad, height - 2 * pad
    coords = []
    for step, loss in history:
        x = pad + (step - s0) / x_span * inner_w if s1 != s0 else width / 2
        y = pad + (hi - loss) / y_span * inner_h if hi != lo else height / 2
        coords.append(f"{x:.1f},{y:.1f}")
    return LossChart(width, height, " ".join(coords), lo, hi, s0, s1)


def job_chart(job: TrainingJob, key: str, **kwargs: int) -> LossChart | None:
    """Any logged series (``loss``, ``reward``) as SVG polyline coordinates."""
    history = [{"step": h["step"], "loss": h[key]} for h in job.history if h.get(key) is not None]
    proxy = TrainingJob(history=history)
    return job_loss_chart(proxy, **kwargs)


def evaluation_list(*, model_version: ModelVersion | None = None) -> QuerySet[EvaluationRun]:
    """Evaluations, newest first (of ``model_version`` only, when given)."""
    runs = EvaluationRun.objects.select_related("model_version", "policy_version__policy")
    if model_version is not None:
        runs = runs.filter(model_version=model_version)
    return runs.order_by("-created_at", "-pk")


def model_version_filter(*, raw: str | None) -> tuple[ModelVersion | None, str]:
    """The model-versions screen's ``?version=`` (a version's id, as a job's page links it): ``(version,
    problem)``; no value is no filter, and one naming no version is no filter with ``problem`` saying so."""
    if raw is None or not raw.strip():
        return None, ""
    version_id = row_id(raw)
    found = ModelVersion.objects.filter(pk=version_id).first() if version_id is not None else None
    if found is None:
        return (
            None,
            f"There is no model version “{raw.strip()[:40]}” (it may have been deleted): showing every version.",
        )
    return found, ""


def evaluation_get(*, pk: int) -> EvaluationRun:
    return get_object_or_404(EvaluationRun.objects.select_related("model_version", "policy_version__policy"), pk=pk)


def policy_version_active_of(*, run: EvaluationRun) -> PolicyVersion | None:
    """The active version of the run's policy (None when it has none), to say when a run started again
    keeps an older version than the one in force."""
    return PolicyVersion.objects.filter(policy_id=run.policy_version.policy_id, is_active=True).first()


def evaluation_find(*, pk: int) -> EvaluationRun | None:
    """The run, or None when no run has that id (a compare link to a deleted or mistyped run)."""
    return EvaluationRun.objects.select_related("model_version", "policy_version__policy").filter(pk=pk).first()


def evaluation_runs_ahead(*, run: EvaluationRun) -> int:
    """Evaluations queued or running that were started before ``run``: the inference worker takes them
    one at a time, in order, so a queued run waits for these (the screen says so instead of a bare
    "Queued · 0 items")."""
    if run.status != EvaluationRun.Status.QUEUED:
        return 0
    active = (EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING)
    return EvaluationRun.objects.filter(status__in=active, pk__lt=run.pk).count()


@dataclass(frozen=True)
class EvaluationProgress:
    decided: int
    total: int
    percent: int
    minutes_left: int | None  # at the pace so far; None before the first batch is decided
    silent_minutes: int | None = None  # minutes since the worker's last heartbeat, when it is overdue
    fails_after_minutes: int = 10  # of silence, when the reaper marks the run failed


def evaluation_progress(*, run: EvaluationRun) -> EvaluationProgress | None:
    """How far a running evaluation is (the worker records each decided batch), or None if not running."""
    if run.status != EvaluationRun.Status.RUNNING or not run.n_items:
        return None
    decided = min(run.n_decided, run.n_items)
    minutes_left = None
    if decided and run.started_at is not None:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        minutes_left = max(1, round(elapsed / decided * (run.n_items - decided) / 60))
    from training.services import HEARTBEAT_STALE_AFTER

    silent_minutes = None
    if run.heartbeat_at is not None:
        silent = (timezone.now() - run.heartbeat_at).total_seconds()
        if silent > 3 * float(settings.EVALUATION_HEARTBEAT_SECONDS):
            silent_minutes = max(1, int(silent // 60))
    return EvaluationProgress(
        decided,
        run.n_items,
        100 * decided // run.n_items,
        minutes_left,
        silent_minutes,
        int(HEARTBEAT_STALE_AFTER.total_seconds() // 60),
    )


@dataclass(frozen=True)
class HeatCell:
    x: int
    y: int
    count: int
    fill: str
    true: str
    pred: str


@dataclass(frozen=True)
class Heatmap:
    labels: list[str]
    cells: list[HeatCell]
    size: int
    cell: int
    offset: int
    axis: list[tuple[str, int]]  # (label, centre of its row / column)


_PER_CATEGORY_KEYS = {"major_recall", "major_recall_exact", "major_support"}


def evaluation_metric_rows(run: EvaluationRun) -> list[tuple[str, str, str]]:
    """The run's headline metrics as (label, key, text) rows: a measure as every screen writes it (``metric_text``),
    a count as a whole number, an interval (a pair such as ``binary_accuracy_ci95``) as "low – high"; the
    per-category tables are shown on their own."""
    rows = []
    undefined = _metrics_without_items(run)
    # In METRIC_LABELS' order (counts, accuracy and its interval, exact-label measures, each class's precision then
    # recall), any other key after them: the run's metrics are jsonb, which keeps keys shortest first, so the page
    # listed "Violation recall" between two accuracies, the interval under "Violation precision".
    order = {key: place for place, key in enumerate(METRIC_LABELS)}
    metrics = sorted((run.metrics or {}).items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    for key, value in metrics:
        if key in _PER_CATEGORY_KEYS:
            continue
        if key in undefined:
            text = f"— ({undefined[key]}; the benchmark counts it {metric_text(0.0)})"
        elif isinstance(value, bool) or value is None:
            text = "—" if value is None else str(value).lower()
        elif isinstance(value, int | float):
            text = metric_text(value) if isinstance(value, float) else str(value)
        elif isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
            text = f"{metric_text(value[0])} – {metric_text(value[1])}"
        else:
            text = str(value)
        rows.append((metric_label(key), key, text))
    return rows


def evaluation_category_rows(run: EvaluationRun) -> list[tuple[str, str, Any]]:
    """The run's recall per major category as (key, English name, recall): the page listed the keys alone
    ("内容质量与伦理"), while the policy's taxonomy names each category in English too ("Content quality & ethics")."""
    names = {major.get("key"): major.get("name", "") for major in (run.policy_version.taxonomy or [])}
    recall = (run.per_category or {}).get("major_recall", {})
    return [(key, names.get(key) or "", value) for key, value in recall.items()]


def _metrics_without_items(run: EvaluationRun) -> dict[str, str]:
    """The recalls of ``run`` that divide by no item, with what the set lacks. The benchmark's rule (sklearn's
    ``zero_division=0``) stores them as 0, which the screen showed as a measured 0.000: a gold set of violations
    only read "Non-violation recall 0.000", as if the model had missed every harmless video. (The precisions
    count an unparsed answer as the wrong verdict, so which of them divide by nothing is not on record.)"""
    metrics = run.metrics or {}
    n, n_violative = metrics.get("n"), metrics.get("n_violative")
    if not isinstance(n, int) or not isinstance(n_violative, int) or not n:
        return {}
    missing = {}
    if not n_violative:
        missing["violative_recall"] = "no violative item in the set"
    if n_violative == n:
        missing["nonviolative_recall"] = "no non-violative item in the set"
    return missing


def confusion_heatmap(run: EvaluationRun, *, cell: int = 28, offset: int = 120) -> Heatmap | None:
    """The confusion matrix (rows: true, columns: predicted) as SVG rectangles; darker = more items."""
    labels = run.confusion.get("labels") or []
    matrix = run.confusion.get("matrix") or []
    if not labels:
        return None
    peak = max((max(row) for row in matrix if row), default=0) or 1
    cells = []
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            shade = 255 - round(200 * count / peak)
            cells.append(
                HeatCell(offset + j * cell, offset + i * cell, count, f"rgb({shade},{shade},255)", labels[i], labels[j])
            )
    axis = [(label, offset + i * cell + cell // 2) for i, label in enumerate(labels)]
    return Heatmap(labels, cells, offset + len(labels) * cell, cell, offset, axis)


def model_versions(*, only: ModelVersion | None = None) -> list[dict]:  # type: ignore[type-arg]
    """Every model version (or ``only`` that one) with its latest evaluation, what the gate says, and
    shadow agreement."""
    from training.release import gate_reads, promotion_check, shadow_agreements

    active_shadows = set(ShadowDeployment.objects.filter(is_active=True).values_list("model_version_id", flat=True))
    listed = ModelVersion.objects.order_by("-is_serving", "-created_at")
    versions = list(listed.filter(pk=only.pk) if only is not None else listed)
    # Each version's latest evaluation, the gate's reads and the shadow figures, read for every version at once: a
    # fixed number of statements however many versions are registered (each version read six or so of its own).
    candidates = [version for version in versions if not version.is_serving]
    reads = gate_reads(candidates=candidates) if candidates else None
    shadows = shadow_agreements(model_versions=versions)
    latest = reads.latest if reads is not None else _evaluations_latest(versions)
    return [
        {
            "version": version,
            "evaluation": latest.get(version.pk),
            "gate": None if version.is_serving else promotion_check(candidate=version, reads=reads),
            "in_shadow": version.pk in active_shadows,
            "shadow": shadows[version.pk],
        }
        for version in versions
    ]


def _evaluations_latest(versions: list[ModelVersion]) -> dict[int, EvaluationRun]:
    """Each of ``versions``' latest finished evaluation (``evaluation_latest``'s row), in one statement."""
    return {
        run.model_version_id: run
        for run in EvaluationRun.objects.filter(
            model_version_id__in=[v.pk for v in versions], status=EvaluationRun.Status.SUCCEEDED
        )
        .select_related("policy_version__policy")
        .order_by("model_version_id", "-finished_at", "-pk")
        .distinct("model_version_id")
    }


def retrain_rules() -> QuerySet[RetrainRule]:
    return RetrainRule.objects.select_related("last_job").order_by("name")


def serving_model_version() -> ModelVersion | None:
    """The version marked serving globally (read only; None before any is marked)."""
    return ModelVersion.objects.filter(is_serving=True).order_by("-created_at").first()


def dataset_sources(*, dataset: PreferenceDataset) -> list[tuple[str, int]]:
    """How many of the snapshot's records (train and held out) came from each source, most first, as the
    source's name a user reads ("Finished Tag2CoT reasoning", "Accepted CoT correction", …): what its build
    counted (``PreferenceDataset.source_counts``), no read of its records."""
    return dataset.sources()
