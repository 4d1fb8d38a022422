"""Writes of the training app: preference datasets and the life of a training job."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from annotation.models import CotCorrection
from moderation.models import Decision, Review
from training.errors import TrainingError
from training.models import PreferenceDataset, PreferencePair, TrainingJob
from training.prompts import cot_render, decision_prompt

logger = logging.getLogger(__name__)

# A running job whose worker has not reported for this long is considered dead.
HEARTBEAT_STALE_AFTER = timedelta(minutes=10)
LOG_TAIL_LINES = 40

DEFAULT_PARAMS: dict[str, Any] = {
    "max_steps": 4,
    "batch_size": 2,
    "learning_rate": 5e-4,
    "beta": 0.1,
    "max_length": 2048,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "lora_target_modules": ["q_proj", "v_proj"],
    "seed": 42,
}
# name -> (type, min, max); a job's params are checked against these before it is queued.
_PARAM_BOUNDS: dict[str, tuple[type, float, float]] = {
    "max_steps": (int, 1, 100_000),
    "batch_size": (int, 1, 256),
    "learning_rate": (float, 1e-9, 1.0),
    "beta": (float, 1e-4, 10.0),
    "max_length": (int, 16, 65_536),
    "lora_r": (int, 1, 1024),
    "lora_alpha": (int, 1, 4096),
    "lora_dropout": (float, 0.0, 0.9),
    "seed": (int, 0, 2**31 - 1),
}
TERMINAL_STATUSES = (TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED, TrainingJob.Status.CANCELLED)


def datasets_dir() -> Path:
    return Path(settings.TRAINING_OUTPUT_DIR) / "datasets"


def job_output_dir(job_id: int) -> Path:
    return Path(settings.TRAINING_OUTPUT_DIR) / "jobs" / str(job_id)


# --- Preference data ------------------------------------------------------------------------


def _pairs_from_human_work() -> list[PreferencePair]:
    """One unsaved pair per decision a human disagreed with; a CoT correction beats an override."""
    decision_qs = Decision.objects.select_related("video", "policy_version__policy").prefetch_related(
        "video__segments", "video__keyframes"
    )
    pairs: dict[int, PreferencePair] = {}

    corrections = CotCorrection.objects.filter(status=CotCorrection.Status.SUBMITTED).order_by("decision_id")
    decisions = decision_qs.in_bulk([c.decision_id for c in corrections])
    for correction in corrections:
        decision = decisions[correction.decision_id]
        pairs[decision.pk] = PreferencePair(
            decision=decision,
            source=PreferencePair.Source.CORRECTION,
            prompt=decision_prompt(decision),
            chosen=cot_render(correction.stages, correction.label, decision.policy_version),
            rejected=cot_render(decision.cot, decision.label, decision.policy_version),
        )

    # The latest override per decision wins over older ones.
    overrides = (
        Review.objects.filter(verdict=Review.Verdict.OVERRIDE)
        .exclude(decision_id__in=list(pairs))
        .order_by("decision_id", "-created_at", "-pk")
        .distinct("decision_id")
    )
    decisions = decision_qs.in_bulk([r.decision_id for r in overrides])
    for review in overrides:
        decision = decisions[review.decision_id]
        extraction = [s for s in decision.cot if s.get("key") == "content_extraction"]
        verdict = {"key": "final_judgment", "text": review.note.strip()}
        pairs[decision.pk] = PreferencePair(
            decision=decision,
            source=PreferencePair.Source.OVERRIDE,
            prompt=decision_prompt(decision),
            chosen=cot_render([*extraction, verdict], review.label, decision.policy_version),
            rejected=cot_render(decision.cot, decision.label, decision.policy_version),
        )
    # A pair whose two sides are the same text teaches nothing (e.g. a correction that changed nothing).
    return [p for _pk, p in sorted(pairs.items()) if p.chosen != p.rejected]


@transaction.atomic
def preference_dataset_build(*, created_by: User | None, name: str | None = None) -> PreferenceDataset:
    """Snapshot every override and submitted CoT correction as DPO pairs, and export them as JSONL.

    The JSONL has TRL's preference columns (``prompt``, ``chosen``, ``rejected``) plus
    ``decision_id`` and ``source``; it is written to a temporary name and renamed into place.
    """
    pairs = _pairs_from_human_work()
    if not pairs:
        raise TrainingError(
            "No overrides or corrections yet: preference pairs come from reviewer overrides and submitted CoT "
            "corrections."
        )
    dataset = PreferenceDataset.objects.create(
        name=name or f"DPO pairs {timezone.now():%Y-%m-%d %H:%M}", created_by=created_by
    )
    for pair in pairs:
        pair.dataset = dataset
    PreferencePair.objects.bulk_create(pairs)

    path = datasets_dir() / f"{dataset.pk}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".jsonl.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for pair in pairs:
            row = {
                "prompt": pair.prompt,
                "chosen": pair.chosen,
                "rejected": pair.rejected,
                "decision_id": pair.decision_id,
                "source": pair.source,
            }
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    dataset.jsonl_path = str(path)
    dataset.pair_count = len(pairs)
    dataset.save(update_fields=["jsonl_path", "pair_count"])
    return dataset


# --- Jobs -----------------------------------------------------------------------------------


def _clean_params(params: dict[str, Any] | None) -> dict[str, Any]:
    merged = {**DEFAULT_PARAMS, **(params or {})}
    unknown = set(merged) - set(DEFAULT_PARAMS)
    if unknown:
        raise TrainingError(f"Unknown training parameter(s): {', '.join(sorted(unknown))}.")
    for key, (kind, low, high) in _PARAM_BOUNDS.items():
        try:
            value = kind(merged[key])
        except (TypeError, ValueError):
            raise TrainingError(f"{key} must be a number.") from None
        if not low <= value <= high:
            raise TrainingError(f"{key} must be between {low:g} and {high:g}.")
        merged[key] = value
    targets = merged["lora_target_modules"]
    if isinstance(targets, str):
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if not targets or not all(isinstance(t, str) for t in targets):
        raise TrainingError("lora_target_modules must name at least one module.")
    merged["lora_target_modules"] = list(targets)
    return merged


@transaction.atomic
def training_job_start(
    *,
    dataset: PreferenceDataset,
    created_by: User | None,
    base_model: str = "",
    params: dict[str, Any] | None = None,
) -> TrainingJob:
    """Queue a DPO job on ``dataset``; the train queue picks it up once this transaction commits."""
    if dataset.pair_count == 0 or not dataset.jsonl_path or not Path(dataset.jsonl_path).exists():
        raise TrainingError(f"Dataset “{dataset.name}” has no exported pairs to train on.")
    clean = _clean_params(params)
    job = TrainingJob.objects.create(
        kind=TrainingJob.Kind.DPO,
        dataset=dataset,
        base_model=(base_model or settings.TRAINING_BASE_MODEL or "").strip(),
        params=clean,
        total_steps=clean["max_steps"],
        created_by=created_by,
    )
    job.output_dir = str(job_output_dir(job.pk))
    job.save(update_fields=["output_dir"])

    from training.tasks import run_training_job

    transaction.on_commit(lambda: run_training_job.delay(job.pk))
    return job


@transaction.atomic
def training_job_cancel(*, job: TrainingJob, by: User | None) -> TrainingJob:
    """Cancel a job: a queued one ends now; a running one stops at its next step."""
    job = TrainingJob.objects.select_for_update().get(pk=job.pk)
    if job.status in TERMINAL_STATUSES:
        raise TrainingError(f"Job {job.pk} has already finished ({job.get_status_display().lower()}).")
    job.cancel_requested = True
    fields = ["cancel_requested"]
    if job.status == TrainingJob.Status.QUEUED:
        job.status = TrainingJob.Status.CANCELLED
        job.finished_at = timezone.now()
        fields += ["status", "finished_at"]
    who = getattr(by, "username", "") or "someone"
    job.log_tail = _append_log(job.log_tail, f"cancel requested by {who}")
    job.save(update_fields=[*fields, "log_tail"])
    return job


def _append_log(tail: str, line: str) -> str:
    lines = [*tail.splitlines(), f"[{timezone.now():%H:%M:%S}] {line}"]
    return "\n".join(lines[-LOG_TAIL_LINES:])


@transaction.atomic
def training_job_claim(*, job_id: int) -> TrainingJob | None:
    """Mark a job running for this worker, or return None when there is nothing to do.

    Nothing to do: the job is gone, already finished, or running with a fresh heartbeat (another
    worker has it). A job running with a stale heartbeat lost its worker and starts over.
    """
    job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in TERMINAL_STATUSES:
        return None
    now = timezone.now()
    if job.status == TrainingJob.Status.RUNNING:
        if job.heartbeat_at and now - job.heartbeat_at < HEARTBEAT_STALE_AFTER:
            return None
        job.log_tail = _append_log(job.log_tail, "worker stopped responding; restarting from step 0")
    if job.cancel_requested:
        job.status = TrainingJob.Status.CANCELLED
        job.finished_at = now
        job.save(update_fields=["status", "finished_at"])
        return None
    job.status = TrainingJob.Status.RUNNING
    job.started_at = now
    job.heartbeat_at = now
    job.step = 0
    job.history = []
    job.error = ""
    job.log_tail = _append_log(job.log_tail, "started")
    job.save(update_fields=["status", "started_at", "heartbeat_at", "step", "history", "error", "log_tail"])
    return job


@transaction.atomic
def training_job_progress(
    *,
    job_id: int,
    step: int,
    total_steps: int | None = None,
    loss: float | None = None,
    log_line: str = "",
) -> bool:
    """Record a worker's progress report; returns True when the job should stop (cancel requested)."""
    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    job.step = step
    job.heartbeat_at = timezone.now()
    fields = ["step", "heartbeat_at"]
    if total_steps:
        job.total_steps = total_steps
        fields.append("total_steps")
    if loss is not None:
        job.history = [*job.history, {"step": step, "loss": round(float(loss), 6)}]
        fields.append("history")
    if log_line:
        job.log_tail = _append_log(job.log_tail, log_line)
        fields.append("log_tail")
    job.save(update_fields=fields)
    return job.cancel_requested


@transaction.atomic
def training_job_set_base_model(*, job_id: int, base_model: str) -> None:
    TrainingJob.objects.filter(pk=job_id).update(base_model=base_model, heartbeat_at=timezone.now())


@transaction.atomic
def training_job_succeed(*, job_id: int, adapter_path: str, metrics: dict[str, Any]) -> TrainingJob:
    """Finish a job whose adapter is saved: register it as a model version moderation can serve."""
    from moderation.inference.services import model_version_register
    from moderation.models import ModelVersion

    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    version = model_version_register(
        name=f"dpo-job-{job.pk}",
        backend=ModelVersion.Backend.TRANSFORMERS,
        base_model=job.base_model,
        adapter_path=adapter_path,
        source_job_id=job.pk,
        metrics=metrics,
    )
    job.model_version = version
    job.status = TrainingJob.Status.SUCCEEDED
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"adapter saved to {adapter_path}; registered {version.name}")
    job.save(update_fields=["model_version", "status", "finished_at", "log_tail"])
    return job


@transaction.atomic
def training_job_finish_cancelled(*, job_id: int) -> None:
    job = TrainingJob.objects.select_for_update().get(pk=job_id)
    job.status = TrainingJob.Status.CANCELLED
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"cancelled at step {job.step}")
    job.save(update_fields=["status", "finished_at", "log_tail"])


@transaction.atomic
def training_job_fail(*, job_id: int, error: str) -> None:
    job = TrainingJob.objects.select_for_update().filter(pk=job_id).first()
    if job is None or job.status in TERMINAL_STATUSES:
        return
    job.status = TrainingJob.Status.FAILED
    job.error = error[:4000]
    job.finished_at = timezone.now()
    job.log_tail = _append_log(job.log_tail, f"failed: {error.splitlines()[0] if error else 'unknown error'}")
    job.save(update_fields=["status", "error", "finished_at", "log_tail"])


def training_jobs_reap_stale(*, now: Any = None) -> list[int]:
    """Fail running jobs whose worker stopped sending heartbeats; returns their ids."""
    cutoff = (now or timezone.now()) - HEARTBEAT_STALE_AFTER
    reaped = []
    stale_ids = list(
        TrainingJob.objects.filter(status=TrainingJob.Status.RUNNING, heartbeat_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for job_id in stale_ids:
        with transaction.atomic():
            job = TrainingJob.objects.select_for_update().get(pk=job_id)
            if job.status != TrainingJob.Status.RUNNING or (job.heartbeat_at and job.heartbeat_at >= cutoff):
                continue  # it reported in meanwhile
            job.status = TrainingJob.Status.FAILED
            job.error = "The worker stopped responding (no heartbeat for 10 minutes)."
            job.finished_at = timezone.now()
            job.log_tail = _append_log(job.log_tail, "worker stopped responding")
            job.save(update_fields=["status", "error", "finished_at", "log_tail"])
            reaped.append(job_id)
    return reaped
