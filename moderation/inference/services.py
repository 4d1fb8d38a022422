from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef
from django.utils import timezone

from moderation.errors import ModerationError, dismissed_already, error_text
from moderation.feedback.selectors import feedback_prompt_stats
from moderation.inference.backends import BackendResult, ContentBundle, Frame, Segment, get_backend, untimed_segments
from moderation.inference.cascade_models import CascadeModel, CascadeTraining
from moderation.inference.models import Decision, DecisionRerun, KeptVerdict, MissingDecisionRepair, ModelVersion
from moderation.integrations.services import event_decision_created, event_model_promoted
from moderation.media.models import Video
from moderation.policies.models import Policy, PolicyVersion
from moderation.policies.services import policy_version_active, policy_versions_auto_applied
from moderation.signals import cascade_changed, decision_recorded, decision_to_review
from workbench.jobs import job_finish, job_start
from workbench.queues import enqueue
from workbench.storage import cached_copy

logger = logging.getLogger(__name__)

BASELINE_NAME = "evidence-baseline-v1"


def model_version_serving(*, policy: Policy | None = None) -> ModelVersion:
    """The model that makes new decisions: the policy's own choice, else the one marked
    serving, else the evidence baseline."""
    if policy is not None and policy.serving_model_id is not None:
        return policy.serving_model  # type: ignore[return-value]
    serving = ModelVersion.objects.filter(is_serving=True).order_by("-created_at").first()
    if serving is not None:
        return serving
    baseline, _ = ModelVersion.objects.get_or_create(
        name=BASELINE_NAME, defaults={"backend": ModelVersion.Backend.EVIDENCE_BASELINE, "is_serving": True}
    )
    return baseline


def model_version_cascade(*, policy_version: PolicyVersion) -> ModelVersion | None:
    """The model version standing for the active stage-1 cascade classifier, if one applies here."""
    from moderation.inference.selectors import cascade_model_active

    cascade = cascade_model_active()
    if cascade is None:
        return None
    if cascade.policy_version is not None and cascade.policy_version.policy_id != policy_version.policy_id:
        return None
    version, _ = ModelVersion.objects.get_or_create(
        name=f"cascade:{cascade.name}",
        defaults={"backend": ModelVersion.Backend.CASCADE_STAGE1, "base_model": cascade.name},
    )
    return version


_SERVING_LOCK = "SELECT pg_advisory_xact_lock(hashtext('moderation.model_version_serving'))"


def model_version_serving_lock() -> None:
    """Take (until the caller's transaction ends) the lock every change of the globally serving model takes, so
    the next change reads the serving model the previous one left (``model_version_promote``; the release gate's
    check that the model it compared with still serves). No row stands for "the serving one" to lock: which row
    it is changes with each promotion."""
    with connection.cursor() as cursor:
        cursor.execute(_SERVING_LOCK)


@transaction.atomic
def model_version_promote(*, model_version: ModelVersion) -> ModelVersion:
    """Make ``model_version`` the one that serves new decisions (exactly one serves: ``one_serving_model``).

    Two promotions at once are taken one after the other (``model_version_serving_lock``): unlocked, the second's
    update only saw the version serving when it started, so the first's newly promoted version kept serving
    beside the second's, two "serving" models."""
    model_version_serving_lock()
    ModelVersion.objects.select_for_update().filter(is_serving=True).exclude(pk=model_version.pk).update(
        is_serving=False
    )
    already = model_version.is_serving
    model_version.is_serving = True
    model_version.save(update_fields=["is_serving"])
    if not already:
        event_model_promoted(model_version=model_version, scope="global")
    return model_version


def model_version_register(
    *,
    name: str,
    backend: str,
    base_model: str = "",
    adapter_path: str = "",
    source_job_id: int | None = None,
    metrics: dict | None = None,
) -> ModelVersion:
    """Register a model version (idempotent by name), e.g. the adapter a training job saved."""
    version, _ = ModelVersion.objects.update_or_create(
        name=name,
        defaults={
            "backend": backend,
            "base_model": base_model,
            "adapter_path": adapter_path,
            "source_job_id": source_job_id,
            "metrics": metrics or {},
        },
    )
    return version


def content_bundle_for(video: Video, *, with_feedback: bool = True) -> ContentBundle:
    """Everything a model reads of a video. Stage 1 reads it through ``stage1_input`` (training and
    serving alike); it does not read user feedback, so its training set skips that query."""
    return ContentBundle(
        title=video.title,
        description=video.description,
        uploader=video.uploader,
        language=video.language,
        segments=[Segment(s.id, s.start, s.end, s.text, s.index) for s in video.segments.all()]
        or untimed_segments(video.asr_text),
        frames=[Frame(k.id, k.timestamp, k.selected) for k in video.keyframes.all()],
        ocr=[part for part in video.ocr_text.split("|") if part.strip()],
        image_paths=[str(cached_copy(k.image.name)) for k in video.keyframes.all() if k.selected and k.image],
        feedback=feedback_prompt_stats(video_id=video.pk) if with_feedback else {},
        sampled_frames=video.sampled_frames or 0,
    )


def decisions_create_for_video(*, video_id: int, policy_versions: list[PolicyVersion] | None = None) -> list[Decision]:
    """Decide a ready video under every auto-applied policy (each with its own serving model), or under
    ``policy_versions`` when given, and route the decisions into the review queues: one run.

    What "decided" means to the visibility rule (``video_open_to_q``: a video with a decision has been routed)
    holds under several policies because a run's decisions and their routing commit together: every model runs
    first, outside any transaction (no row stays locked during a slow generation), then one transaction saves
    the decisions missing and routes them all. Saved one by one, the video had a decision, so was open to every
    reviewer, from the first policy's commit until a later policy routed it to a group-restricted queue.

    Idempotent: a decision already made for this video, policy version and deciding model is kept as it is (a
    redelivered task does no second inference), and its review tasks are created if missing; the write
    re-checks under the video's row lock, so two deliveries at once save each decision once. When one policy's
    model fails, no decision of the run is saved (the video stays undecided); the answers of the models that
    succeeded are kept (``KeptVerdict``), so the retry runs only the failed policy's model, as long as the video,
    its feedback and the models are what they were (else it runs them again).
    """
    versions = policy_versions_auto_applied() if policy_versions is None else policy_versions
    if not versions:
        raise ModerationError("No policy applies to new videos; run `manage.py bootstrap` first.")
    video = Video.objects.get(pk=video_id)
    plans = [_plan(pv) for pv in versions]
    verdicts: dict[int, _Verdict] = {}
    missing = [plan for plan in plans if _decision_found(video_id, plan) is None]
    if missing:
        content = content_bundle_for(video)
        for plan in missing:
            fingerprint = _fingerprint(plan, content)
            kept = _verdict_kept(video_id, plan, fingerprint)
            answer = kept if kept is not None else _verdict(plan, content)
            verdicts[plan.policy_version.pk] = answer
            if kept is None and len(missing) > 1:
                # Kept at once, outside the run's transaction: should a later policy's model fail, the retry
                # reruns only that one (``KeptVerdict``).
                _verdict_keep(video_id, plan, fingerprint, answer)

    with transaction.atomic():
        video = Video.objects.select_for_update().get(pk=video_id)
        made: list[tuple[Decision, bool]] = []
        for plan in plans:
            found = _decision_found(video_id, plan)
            if found is not None:
                made.append((found, False))
                continue
            verdict = verdicts.get(plan.policy_version.pk)
            if verdict is None:  # found at the first look, deleted since: the retry decides it again
                raise ModerationError(f"A decision under {plan.policy_version} was deleted while it was routed.")
            made.append((_verdict_save(video, plan, verdict), True))
        for decision, new in made:
            decision_to_review.send(sender=Decision, decision=decision)
            if new:
                # Shadow mode lives in training, which subscribes: candidates decide the same item beside it.
                decision_recorded.send(sender=Decision, decision_id=decision.pk)
        KeptVerdict.objects.filter(video_id=video_id).delete()  # saved now, or made for a plan that changed
        if any(new for _, new in made):
            video.stage = Video.Stage.DONE
            video.progress = 100
            fields = ["stage", "progress", "updated_at"]
            if video.error:  # an earlier try waited for media storage (a decided video has no failure); it is over
                video.error, video.error_for_sender = "", False
                fields += ["error", "error_for_sender"]
            video.save(update_fields=fields)
    for decision, new in made:
        if new:
            logger.info(
                "decision %s for video %s: %s (%.2f)", decision.pk, video_id, decision.label, decision.confidence
            )
    return [decision for decision, _ in made]


def decisions_create_missing_for_video(*, video_id: int) -> list[Decision]:
    """The decisions a decided video lacks under the policies that auto-apply (``videos_missing_auto_decision``),
    made and routed in one run (``decisions_create_for_video``: the visibility rule then knows every policy's
    routing). Idempotent: a policy already deciding the video is not asked again, so a redelivered task runs no
    model; a video with no decision at all is left to its own inference run. Returns the new decisions."""
    decided = set(Decision.objects.filter(video_id=video_id).values_list("policy_version__policy_id", flat=True))
    missing = [version for version in policy_versions_auto_applied() if version.policy_id not in decided]
    made = decisions_create_for_video(video_id=video_id, policy_versions=missing) if decided and missing else []
    MissingDecisionRepair.objects.filter(video_id=video_id).delete()  # nothing missing now: no try to show
    return made


def kept_verdicts_purge(*, now: datetime | None = None) -> int:
    """Delete the model answers kept for a retry (``KeptVerdict``) older than ``KEPT_VERDICT_RETENTION_DAYS``: a
    video never retried (given up, taken down, decided another way) would keep them for good. A retry after that
    runs every model again. Idempotent (one DELETE); returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.KEPT_VERDICT_RETENTION_DAYS)
    deleted = KeptVerdict.objects.filter(created_at__lt=cutoff).delete()[0]
    if deleted:
        logger.info("purged %s kept verdicts older than %s", deleted, cutoff)
    return deleted


def missing_decisions_queue(*, video_ids: Sequence[int], now: datetime | None = None) -> None:
    """Queue ``decide_missing_policies`` for each of ``video_ids`` (after the commit) and record when
    (``MissingDecisionRepair.queued_at``), so the next repair leaves them to their task."""
    if not video_ids:
        return
    now = now or timezone.now()
    MissingDecisionRepair.objects.bulk_create(
        [MissingDecisionRepair(video_id=pk, queued_at=now) for pk in video_ids],
        update_conflicts=True,
        unique_fields=["video"],
        update_fields=["queued_at"],
    )
    for video_id in video_ids:
        # Queued twice (a second click before the first ran), the second finds the decisions made: no model runs.
        enqueue("moderation.inference.tasks.decide_missing_policies", video_id)


def missing_decisions_retry() -> list[int]:
    """The ops page's Retry: queue once more every half-decided video whose missing decisions failed
    ``MissingDecisionRepair.MAX_ATTEMPTS`` times (each click one more try). Returns the videos queued."""
    from moderation.inference.selectors import missing_decisions_failed

    video_ids = [r.video_id for r in missing_decisions_failed() if r.given_up]
    missing_decisions_queue(video_ids=video_ids)
    return video_ids


def _repair_locked(video_id: int) -> MissingDecisionRepair:
    """The video's repair row under its row lock (a second click waits for the first, then sees its outcome);
    a readable error when there is none any more (the video deleted, or decided under every policy since)."""
    from moderation.inference.selectors import videos_missing_auto_decision

    if not Video.objects.filter(pk=video_id).exists():
        raise ModerationError(f"Video #{video_id} no longer exists: nothing to retry or dismiss.")
    if not videos_missing_auto_decision().filter(pk=video_id).exists():
        raise ModerationError(f"Video #{video_id} lacks no decision now: nothing to retry or dismiss.")
    repair = MissingDecisionRepair.objects.select_for_update().filter(video_id=video_id).first()
    if repair is None:
        raise ModerationError(
            f"Video #{video_id} has no failed try to retry or dismiss: Repair routing queues its missing decisions."
        )
    return repair


@transaction.atomic
def missing_decision_retry(*, video_id: int, by: User) -> MissingDecisionRepair:
    """The ops page's Retry on one video whose try at its missing decisions failed (given up or not, dismissed
    or not): queue it once more on the infer queue and clear a dismissal. Refused, with a message, when it is
    queued already (a double click: one task, not two), when the video is gone or lacks nothing now."""
    repair = _repair_locked(video_id)
    lost = repair.queued_at <= timezone.now() - MissingDecisionRepair.QUEUED_FOR  # its task never answered
    if not repair.failed_last and repair.dismissed_at is None and not lost:
        raise ModerationError(
            f"Video #{video_id} is queued already (since {timezone.localtime(repair.queued_at):%Y-%m-%d %H:%M}):"
            " its try has not failed yet."
        )
    repair.queued_at, repair.dismissed_at, repair.dismissed_by = timezone.now(), None, None
    repair.save(update_fields=["queued_at", "dismissed_at", "dismissed_by"])
    enqueue("moderation.inference.tasks.decide_missing_policies", video_id)
    logger.info("missing decisions of video %s queued again by %s", video_id, by.get_username())
    return repair


@transaction.atomic
def missing_decision_dismiss(*, video_id: int, by: User) -> MissingDecisionRepair:
    """The ops page's Dismiss on one video given up after failing: recorded with who and when; the video is no
    longer counted among the half-decided nor queued by the repair, and stays listed under "dismissed" (where
    Retry undoes it). Refused, with a message, when it is dismissed already, queued, or not given up yet."""
    repair = _repair_locked(video_id)
    if repair.dismissed_at is not None:
        raise dismissed_already(video_id=video_id, by=repair.dismissed_by, at=repair.dismissed_at)
    if not repair.given_up:
        raise ModerationError(
            f"Video #{video_id} is not given up: only a video whose missing decisions failed "
            f"{MissingDecisionRepair.MAX_ATTEMPTS} times can be dismissed."
        )
    repair.dismissed_at, repair.dismissed_by = timezone.now(), by
    repair.save(update_fields=["dismissed_at", "dismissed_by"])
    logger.info("missing decisions of video %s dismissed by %s", video_id, by.get_username())
    return repair


def missing_decision_failure_record(*, video_id: int, error: str) -> MissingDecisionRepair:
    """A try at a half-decided video's missing decisions failed: record why and count it; after
    ``MissingDecisionRepair.MAX_ATTEMPTS`` failures the repair no longer queues it (the ops page lists it)."""
    now = timezone.now()
    repair, _ = MissingDecisionRepair.objects.get_or_create(video_id=video_id, defaults={"queued_at": now})
    MissingDecisionRepair.objects.filter(pk=repair.pk).update(
        attempts=F("attempts") + 1, error=error[:2000], failed_at=now
    )
    repair.refresh_from_db()
    return repair


def decision_create_for_video(*, video_id: int, policy_version: PolicyVersion | None = None) -> Decision:
    """A one-policy run of ``decisions_create_for_video``: ``policy_version`` defaults to the default policy's
    active version; the model is the one serving that policy (``model_version_serving``)."""
    [decision] = decisions_create_for_video(
        video_id=video_id, policy_versions=[policy_version or policy_version_active()]
    )
    return decision


@dataclass(frozen=True)
class _Plan:
    """Who decides a video under one policy version: its serving model, and the stage-1 cascade if one applies."""

    policy_version: PolicyVersion
    model_version: ModelVersion
    cascade_version: ModelVersion | None

    @property
    def deciders(self) -> list[int]:
        return [self.model_version.pk] + ([self.cascade_version.pk] if self.cascade_version else [])


@dataclass(frozen=True)
class _Verdict:
    """One policy's answer on a video, not saved yet."""

    model_version: ModelVersion
    result: BackendResult
    latency_ms: float
    cascade: dict[str, Any]


def _plan(policy_version: PolicyVersion) -> _Plan:
    return _Plan(
        policy_version=policy_version,
        model_version=model_version_serving(policy=policy_version.policy),
        cascade_version=model_version_cascade(policy_version=policy_version),
    )


def _decision_found(video_id: int, plan: _Plan) -> Decision | None:
    return Decision.objects.filter(
        video_id=video_id, policy_version_id=plan.policy_version.pk, model_version_id__in=plan.deciders
    ).first()


def _verdict(plan: _Plan, content: ContentBundle) -> _Verdict:
    """Run the plan's models on ``content`` (outside any transaction)."""
    spec = plan.policy_version.spec()
    model_version, cascade_version = plan.model_version, plan.cascade_version
    started = time.perf_counter()
    stage, uncertainty, escalated, p_violative = None, None, False, None
    result = None
    if cascade_version is not None:
        # COEF-VQ: the cheap stage-1 classifier decides confident items; only uncertain ones reach the VLM.
        [first] = get_backend(cascade_version.backend, base_model=cascade_version.base_model).decide_batch(
            [content], spec
        )
        uncertainty, escalated, p_violative = first.uncertainty, first.escalate, first.p_violative
        if not first.escalate:
            result, model_version, stage = first, cascade_version, 1
        else:
            stage = 2
    if result is None:
        backend = get_backend(
            model_version.backend, base_model=model_version.base_model, adapter_path=model_version.adapter_path
        )
        [result] = backend.decide_batch([content], spec)
    latency_ms = (time.perf_counter() - started) * 1000 if result.latency_ms is None else result.latency_ms
    cascade = {
        "cascade_stage": stage,
        "cascade_uncertainty": uncertainty,
        "cascade_escalated": escalated,
        "cascade_p_violative": p_violative,
    }
    return _Verdict(model_version=model_version, result=result, latency_ms=latency_ms, cascade=cascade)


def _fingerprint(plan: _Plan, content: ContentBundle) -> str:
    """What a plan's answer depends on: the content the models read (local image paths aside: each worker has its
    own copies; the frames' ids name them), the policy version and the deciding models as they are now."""
    read = dataclasses.asdict(content)
    read.pop("image_paths", None)
    models = [plan.model_version] + ([plan.cascade_version] if plan.cascade_version else [])
    identity = [(m.pk, m.backend, m.base_model, m.adapter_path) for m in models]
    payload = json.dumps([read, plan.policy_version.pk, identity], sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _verdict_keep(video_id: int, plan: _Plan, fingerprint: str, verdict: _Verdict) -> None:
    answer = {
        "model_version": verdict.model_version.pk,
        "result": dataclasses.asdict(verdict.result),
        "latency_ms": verdict.latency_ms,
        "cascade": verdict.cascade,
    }
    KeptVerdict.objects.update_or_create(
        video_id=video_id, policy_version=plan.policy_version, fingerprint=fingerprint, defaults={"answer": answer}
    )


def _verdict_kept(video_id: int, plan: _Plan, fingerprint: str) -> _Verdict | None:
    """The answer a failed run kept for this plan on the same input, if any (``KeptVerdict``)."""
    kept = KeptVerdict.objects.filter(
        video_id=video_id, policy_version=plan.policy_version, fingerprint=fingerprint
    ).first()
    if kept is None:
        return None
    deciders = {m.pk: m for m in (plan.model_version, plan.cascade_version) if m is not None}
    try:
        return _Verdict(
            model_version=deciders[kept.answer["model_version"]],
            result=BackendResult(**kept.answer["result"]),
            latency_ms=float(kept.answer["latency_ms"]),
            cascade=dict(kept.answer["cascade"]),
        )
    except (KeyError, TypeError, ValueError):  # kept by code that stored another shape: decide again
        logger.warning("kept verdict %s of video %s is unreadable; deciding again", kept.pk, video_id)
        return None


def _verdict_save(video: Video, plan: _Plan, verdict: _Verdict) -> Decision:
    return _decision_save(
        video, plan.policy_version, verdict.model_version, verdict.result, verdict.latency_ms, **verdict.cascade
    )


def _answer_fields(result: BackendResult, latency_ms: float) -> dict[str, Any]:
    """What a Decision, and a re-run of one, store of a model's answer."""
    return {
        "label": result.label,
        "is_violation": result.is_violation,
        "confidence": result.confidence,
        "scene": result.scene,
        "severity": result.severity,
        "cot": result.cot,
        "raw_output": result.raw_output,
        "parse_error": result.parse_error,
        "latency_ms": latency_ms,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "prompt_cut_tokens": result.prompt_cut_tokens,
    }


def _decision_save(
    video: Video,
    policy_version: PolicyVersion,
    model_version: ModelVersion,
    result: BackendResult,
    latency_ms: float,
    **cascade: Any,
) -> Decision:
    decision = Decision.objects.create(
        video=video,
        policy_version=policy_version,
        model_version=model_version,
        backend=model_version.backend,
        **_answer_fields(result, latency_ms),
        **cascade,
    )
    event_decision_created(decision=decision)  # in the caller's transaction (outbox)
    return decision


@dataclass(frozen=True)
class ModelAnswer:
    """A model's answer on one item, not saved yet (``decision_answer_by_model``)."""

    model_version: ModelVersion
    result: BackendResult
    latency_ms: float


def decision_by_model_found(*, decision: Decision, model_version: ModelVersion) -> Decision | None:
    """``model_version``'s decision on the item ``decision`` is about, under the same policy version, if made."""
    return Decision.objects.filter(
        video_id=decision.video_id, policy_version_id=decision.policy_version_id, model_version=model_version
    ).first()


def decision_answer_by_model(*, decision: Decision, model_version: ModelVersion) -> ModelAnswer | None:
    """Ask ``model_version`` about the item ``decision`` is about, under the same policy version (for a review
    queue that reviews its own model's verdict: ``review_queue_decision``), outside any transaction: nothing is
    saved, so the caller decides under its locks whether the answer is still wanted (``decision_save_by_model``).
    None when the model failed (logged): the item is then reviewed under ``decision`` itself."""
    started = time.perf_counter()
    try:
        backend = get_backend(
            model_version.backend, base_model=model_version.base_model, adapter_path=model_version.adapter_path
        )
        [result] = backend.decide_batch([content_bundle_for(decision.video)], decision.policy_version.spec())
    except Exception:
        logger.exception("model %s failed on video %s", model_version.name, decision.video_id)
        return None
    latency_ms = (time.perf_counter() - started) * 1000 if result.latency_ms is None else result.latency_ms
    return ModelAnswer(model_version=model_version, result=result, latency_ms=latency_ms)


def decision_save_by_model(*, decision: Decision, answer: ModelAnswer) -> Decision:
    """Save ``answer`` as its model's decision on ``decision``'s item, in the caller's transaction, which holds
    the video's row lock. Idempotent: a decision that model made already (a redelivered task) is returned."""
    found = decision_by_model_found(decision=decision, model_version=answer.model_version)
    if found is not None:
        return found
    video = Video.objects.get(pk=decision.video_id)
    return _decision_save(video, decision.policy_version, answer.model_version, answer.result, answer.latency_ms)


def decision_wait_for_storage(*, video_id: int, error: str) -> None:
    """Inference could not read the video's media from storage: say so on the video (still ready, still
    waiting for its decision); the task is retried. A later success clears the message."""
    Video.objects.filter(pk=video_id).update(
        error=f"Waiting for media storage: {error} Inference will be retried."[:2000],
        error_for_sender=False,
        updated_at=timezone.now(),
    )


def decision_record_failure(*, video_id: int, error: str) -> None:
    """Inference failed: the video keeps its media but shows why no decision was made."""
    Video.objects.filter(pk=video_id).update(
        status=Video.Status.FAILED,
        stage=Video.Stage.INFERENCE,
        error=f"Model inference failed: {error}",
        error_for_sender=False,
        error_kind=Video.ErrorKind.OTHER,
    )


def decision_record_stopped(*, video_id: int, reason: str) -> bool:
    """A video whose solo infer worker was ended at the task's hard time limit (workbench/worker_limits.py): failed
    with the reason now, not "processing" (counted and polled every 5 s on every reviewer's queue list) until the
    broker hands the message out again, CELERY_VISIBILITY_TIMEOUT later. Only while it has no decision: the model
    may have finished as the limit came. False when it was left as it was."""
    updated = (
        Video.objects.filter(pk=video_id)
        .exclude(status=Video.Status.FAILED)
        .exclude(Exists(Decision.objects.filter(video_id=OuterRef("pk"))))
        .update(
            status=Video.Status.FAILED,
            stage=Video.Stage.INFERENCE,
            error=f"Model inference failed: {reason}",
            error_for_sender=False,
            error_kind=Video.ErrorKind.OTHER,
        )
    )
    return updated > 0


# --- Re-running a decision whose user feedback changed ---------------------------------------------


def decision_rerun_request(*, decision_id: int, by: User) -> DecisionRerun:
    """Ask the decision's own model to decide its item again with the user feedback on record now, on
    the infer queue (the message leaves after the commit).

    Refused with a ``ModerationError`` for the evidence baseline (the review screen re-derives its stage 4
    itself) and when no feedback arrived since the decision or its latest finished re-run (nothing new to
    see). Idempotent: while a re-run of the decision is queued or running, asking again returns that one
    (no second run); one queued for ``DecisionRerun.RESEND_AFTER``, or running with no progress for
    ``DecisionRerun.STALLED_AFTER`` (its worker died), is sent again (``may_resend``; ``_rerun_finish`` keeps
    the first of two deliveries to finish).
    """
    from moderation.feedback.models import FeedbackAggregate
    from moderation.inference.selectors import decision_feedback_known_until, decision_reruns_latest

    now = timezone.now()
    with transaction.atomic():
        # The decision's row lock serialises two requests for it (two tabs, a double click).
        decision = Decision.objects.select_for_update().select_related("model_version").get(pk=decision_id)
        if decision.backend == ModelVersion.Backend.EVIDENCE_BASELINE:
            raise ModerationError(
                "The evidence baseline is not re-run: the screen re-derives its user-feedback stage from "
                "the feedback on record now."
            )
        latest, fresh = decision_reruns_latest(decision=decision)
        if latest is not None and latest.is_open:
            if latest.may_resend(now=now):
                latest.sent_at = now
                latest.save(update_fields=["sent_at"])
                enqueue("moderation.inference.tasks.rerun_decision", latest.pk, robust=True)
            return latest
        last_event = (
            FeedbackAggregate.objects.filter(video_id=decision.video_id).values_list("last_event_at", flat=True).first()
        )
        known = decision_feedback_known_until(decision=decision, fresh=fresh)
        if last_event is None or (known is not None and last_event <= known):
            raise ModerationError(
                "No user feedback arrived since the model last decided this item: a re-run would see nothing new."
            )
        rerun = DecisionRerun.objects.create(decision=decision, requested_by=by, sent_at=now)
        # robust: a broker that does not answer leaves the re-run queued (shown so), never a failed page;
        # asking again after DecisionRerun.RESEND_AFTER sends it again.
        enqueue("moderation.inference.tasks.rerun_decision", rerun.pk, robust=True)
    logger.info("re-run %s of decision %s asked for by %s", rerun.pk, decision.pk, by.username)
    return rerun


def decision_rerun_run(*, rerun_id: int) -> DecisionRerun:
    """Run one requested re-run (the task's body): the decision's model on the item as it is now.

    Idempotent: a finished re-run (done or failed) is returned as it is; a redelivery of one left
    running by a worker that died runs it again, and of two deliveries running at once only the first
    to finish writes. A model that cannot run here or fails records ``failed`` with the reason; an
    unparseable answer is ``done`` with its parse error (the screen keeps the decision's reasoning then).
    """
    from moderation.feedback.models import FeedbackAggregate

    # A redelivery of one left running by a dead worker runs it again (from queued or running).
    rerun, start = job_start(DecisionRerun, rerun_id, from_status=DecisionRerun.OPEN)
    if not start:
        return rerun
    decision = Decision.objects.select_related("video", "policy_version", "model_version").get(pk=rerun.decision_id)
    model_version = decision.model_version
    # Read before the prompt's statistics: an event landing in between makes the stage stale again
    # rather than being taken for known.
    seen_until = (
        FeedbackAggregate.objects.filter(video_id=decision.video_id).values_list("last_event_at", flat=True).first()
    )
    started = time.perf_counter()
    try:
        content = content_bundle_for(decision.video)
        backend = get_backend(
            model_version.backend, base_model=model_version.base_model, adapter_path=model_version.adapter_path
        )
        [result] = backend.decide_batch([content], decision.policy_version.spec())
    except Exception as exc:  # the reviewer must see why, and the row must not stay "running"
        logger.exception("re-run %s of decision %s (%s) failed", rerun_id, decision.pk, model_version.name)
        return _rerun_finish(rerun_id, status=DecisionRerun.Status.FAILED, error=_rerun_error(model_version, exc))
    latency_ms = (time.perf_counter() - started) * 1000 if result.latency_ms is None else result.latency_ms
    return _rerun_finish(
        rerun_id,
        status=DecisionRerun.Status.DONE,
        feedback=content.feedback,
        feedback_seen_until=seen_until,
        **_answer_fields(result, latency_ms),
    )


def decision_rerun_stopped(*, rerun_id: int, reason: str) -> DecisionRerun:
    """A running re-run whose worker was ended at the task's hard time limit (workbench/worker_limits.py): failed
    with the reason now, not "running" until the screen calls it stalled; the reviewer may ask again."""
    rerun = DecisionRerun.objects.select_related("decision__model_version").get(pk=rerun_id)
    error = f"The model {rerun.decision.model_version.name} could not re-run: {reason}"
    return _rerun_finish(rerun_id, status=DecisionRerun.Status.FAILED, error=error)


def _rerun_finish(rerun_id: int, **fields: Any) -> DecisionRerun:
    return job_finish(DecisionRerun, rerun_id, **fields)  # a twin delivery that finished first is kept


def _rerun_error(model_version: ModelVersion, exc: Exception) -> str:
    """What the reviewer reads when the model could not re-run."""
    if isinstance(exc, ImportError):
        detail = _shortened(str(exc).strip() or type(exc).__name__)
        return (
            f"The model {model_version.name} ({model_version.get_backend_display()}) cannot run on this "
            f"inference worker: {detail}. It needs a worker with its libraries (a GPU node, requirements/gpu.txt)."
        )
    # Our own refusal (a rubric too long for the model…) reads as it is, anything else with its class name.
    return f"The model {model_version.name} could not re-run: {_shortened(error_text(exc))}"


def _shortened(detail: str) -> str:
    return detail[:400] + "…" if len(detail) > 400 else detail


# --- Cascade stage 1: training from trusted labels, routing by target accuracy -----------------------


def cascade_artifact_path(name: str) -> Path:
    """Check a stage-1 model name; returns where a node kept that model before models went to media
    storage (``stage1_artifact_name``), still read once on upgrade."""
    if len(name) > 100:  # a long name of letters was told it used the wrong characters
        raise ModerationError(f"A cascade model name is at most 100 characters; this one has {len(name)}.")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", name):
        raise ModerationError(
            "A cascade model name starts with a letter or a digit and may use letters, digits, '.', '_' and '-' only."
        )
    return Path(settings.MODELS_DIR) / "cascade" / f"{name}.joblib"


# One stage-1 training at a time, wherever it starts (the ``train_cascade`` command, the dashboard's or beat's queued
# training): a session lock held for the whole fit, tried, never waited on (a fit takes minutes).
CASCADE_TRAINING_LOCK = "hashtext('moderation.cascade_train')"
# Activations one after another: two at once each read the active model before the other's commit and both
# inserted an active one (``one_active_cascade_model``: IntegrityError).
_CASCADE_ACTIVATION_LOCK = "SELECT pg_advisory_xact_lock(hashtext('moderation.cascade_activation'))"
CASCADE_TRAINING_BUSY = (
    "A stage-1 training is running already (another train_cascade command, or the dashboard's or beat's retrain); "
    "this one was skipped, nothing was changed. The model it makes becomes active when it ends: run again after it "
    "if you still need yours."
)


class CascadeTrainingBusy(ModerationError):
    """Another stage-1 training holds the lock: this one is skipped (``CASCADE_TRAINING_BUSY``), not failed."""


def cascade_train(*, name: str, threshold: float | None = None, target_accuracy: float | None = None) -> CascadeModel:
    """Train stage 1 on every trusted label in the database, save it and make it the active model.

    One at a time: while another training runs (any process), this one is skipped with ``CASCADE_TRAINING_BUSY``
    (a ``ModerationError``) and a log line, nothing trained or changed.

    The model is chosen among the candidates on inner folds of the labelled items
    (``stage1_select_fit``). Routing: a fixed entropy ``threshold``, else ``target_accuracy`` (default
    ``CASCADE_TARGET_ACCURACY``), whose cut comes from the held-out curve of the training items.
    Retraining under an existing name replaces that model. Raises ModerationError when there are
    fewer than ``CASCADE_MIN_TRAIN_LABELS`` labels or not enough of both kinds.
    """
    from moderation.inference.stage1.routing import check_target, check_threshold

    if threshold is not None:
        check_threshold(threshold)
    else:
        target_accuracy = settings.CASCADE_TARGET_ACCURACY if target_accuracy is None else target_accuracy
        check_target(target_accuracy)
    cascade_artifact_path(name)  # the name's check
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_try_advisory_lock({CASCADE_TRAINING_LOCK})")
        if not cursor.fetchone()[0]:
            logger.warning("stage-1 training %s skipped: another training is running", name)
            raise CascadeTrainingBusy(CASCADE_TRAINING_BUSY)
    try:
        return _cascade_train_locked(name=name, threshold=threshold, target_accuracy=target_accuracy)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT pg_advisory_unlock({CASCADE_TRAINING_LOCK})")


def _cascade_train_locked(*, name: str, threshold: float | None, target_accuracy: float | None) -> CascadeModel:
    from moderation.inference.selectors import cascade_training_set
    from moderation.inference.stage1.model import stage1_artifact_name, stage1_save
    from moderation.inference.stage1.routing import curve_summary, risk_coverage
    from moderation.inference.stage1.selection import stage1_select_fit
    from workbench.storage import artifact_store, scratch_dir

    training = cascade_training_set()
    if len(training.labels) < settings.CASCADE_MIN_TRAIN_LABELS:
        raise ModerationError(
            f"Stage 1 is trained from at least {settings.CASCADE_MIN_TRAIN_LABELS} labelled items "
            f"(CASCADE_MIN_TRAIN_LABELS); there are {len(training.labels)}. Review or import more first: "
            "a model fitted on fewer would auto-decide live items on too little evidence."
        )
    selection = stage1_select_fit(
        training.items,
        training.labels,
        safe_label=training.safe_label,
        label_order=training.label_order,
        target_accuracy=target_accuracy,
    )
    classifier = selection.classifier
    escalate_threshold = threshold if threshold is not None else selection.threshold
    assert escalate_threshold is not None  # a target always yields a threshold
    # Into media storage, not MODELS_DIR: the infer worker that uses it is another container.
    with scratch_dir("cascade") as folder:
        local = folder / f"{name}.joblib"
        stage1_save(classifier, local)
        stored = artifact_store(local, stage1_artifact_name(name), move=True)
    head = classifier.binary
    counts: dict[str, int] = {}
    for label in training.labels:
        counts[label] = counts.get(label, 0) + 1
    curve = risk_coverage(head.held_out_p, (head.held_out_p > 0.5) == (head.held_out_y == 1))
    metrics = {
        "label_counts": counts,
        "chosen": selection.chosen,
        "inner": selection.inner,
        "held_out_binary_accuracy": head.held_out_accuracy,
        "held_out_curve": curve_summary(curve),
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_CASCADE_ACTIVATION_LOCK)
        CascadeModel.objects.select_for_update().filter(is_active=True).exclude(name=name).update(is_active=False)
        model, _ = CascadeModel.objects.update_or_create(
            name=name,
            defaults={
                "artifact_path": stored,
                "labels": classifier.labels,
                "metrics": metrics,
                "escalate_threshold": escalate_threshold,
                "target_accuracy": target_accuracy if threshold is None else None,
                "trained_on": len(training.labels),
                "label_watermark": training.watermark,
                "policy_version": training.policy_version,
                "is_active": True,
            },
        )
    logger.info("cascade model %s (%s) trained on %s labelled items", name, selection.chosen, len(training.labels))
    return model


def _active_cascade_locked() -> CascadeModel:
    model = CascadeModel.objects.select_for_update().filter(is_active=True).first()
    if model is None:
        raise ModerationError("No stage-1 model is active: train one first.")
    return model


@transaction.atomic
def cascade_threshold_set(*, threshold: float, by: User | None = None) -> CascadeModel:
    """Route the active stage-1 model by a fixed escalation threshold; no retraining. Items decided
    from now on are routed by it (the worker reads it with the model for every item)."""
    from moderation.inference.stage1.routing import check_threshold

    check_threshold(threshold)
    model = _active_cascade_locked()
    before = {"escalate_threshold": model.escalate_threshold, "target_accuracy": model.target_accuracy}
    model.escalate_threshold, model.target_accuracy = threshold, None
    model.save(update_fields=["escalate_threshold", "target_accuracy"])
    _cascade_audited(model, action="cascade.threshold_set", by=by, before=before)
    logger.info("cascade model %s: escalation threshold set to %s", model.name, threshold)
    return model


@transaction.atomic
def cascade_target_set(*, target_accuracy: float, by: User | None = None) -> CascadeModel:
    """Route the active stage-1 model by a target accuracy; no retraining. The cut comes from the
    risk–coverage curve the dashboard draws: reviewed items once there are enough of them, else the
    model's held-out curve from training."""
    from moderation.inference.selectors import cascade_curve
    from moderation.inference.stage1.routing import check_target, cut_for_target, entropy_for_confidence

    check_target(target_accuracy)
    model = _active_cascade_locked()
    before = {"escalate_threshold": model.escalate_threshold, "target_accuracy": model.target_accuracy}
    curve = cascade_curve(model=model)
    cut = cut_for_target(curve.points, target_accuracy)
    model.escalate_threshold = 0.0 if cut is None else entropy_for_confidence(cut)
    model.target_accuracy = target_accuracy
    model.save(update_fields=["escalate_threshold", "target_accuracy"])
    _cascade_audited(model, action="cascade.target_set", by=by, before=before)
    logger.info(
        "cascade model %s: target accuracy %s -> threshold %.3f", model.name, target_accuracy, model.escalate_threshold
    )
    return model


@transaction.atomic
def cascade_switch_off(*, by: User | None = None) -> CascadeModel:
    """Take the active stage-1 model out of the cascade: items decided from now on go straight to the serving model.

    Training stage 1 makes it active at once, and nothing else switched it off again (the dashboard had no way, the
    Django admin does not list it): an admin who found it auto-deciding badly could only retrain it. It stays
    stored; the next training (the button; beat's retrain asks only while one is active) makes a model active again."""
    model = _active_cascade_locked()
    model.is_active = False
    model.save(update_fields=["is_active"])
    _cascade_audited(model, action="cascade.switch_off", by=by, before={"is_active": True})
    logger.info("cascade model %s switched off: every item goes to the serving model", model.name)
    return model


def _cascade_audited(model: CascadeModel, *, action: str, by: User | None, before: dict[str, Any]) -> None:
    # Which items a model decides with no human changed: the audit log says who, and what it was before.
    after: dict[str, Any] = {
        "is_active": model.is_active,
        "escalate_threshold": model.escalate_threshold,
        "target_accuracy": model.target_accuracy,
    }
    cascade_changed.send(
        sender=CascadeModel,
        model=model,
        action=action,
        by=by,
        payload={"name": model.name, "before": before, "after": after},
    )


def cascade_retrain_if_due() -> CascadeTraining | None:
    """Beat: ask for a retrain of the active stage-1 model under its name and routing when at least
    ``CASCADE_RETRAIN_AFTER_LABELS`` trusted labels arrived since the labels it was trained on. Goes
    through ``cascade_training_request`` like the button: a tick during a training gets that one back."""
    from moderation.inference.selectors import cascade_new_labels

    model = CascadeModel.objects.filter(is_active=True).first()
    if model is None or cascade_new_labels(model=model) < settings.CASCADE_RETRAIN_AFTER_LABELS:
        return None
    target, threshold = model.target_accuracy, model.escalate_threshold
    return cascade_training_request(
        name=model.name,
        target_accuracy=target,
        threshold=None if target is not None else threshold,
        trigger=CascadeTraining.Trigger.BEAT,
    )


def cascade_training_request(
    *,
    name: str,
    threshold: float | None = None,
    target_accuracy: float | None = None,
    by: User | None = None,
    trigger: str = CascadeTraining.Trigger.BUTTON,
) -> CascadeTraining:
    """Queue a stage-1 training (``cascade_train`` on the default queue, after the commit) and record it.

    What can be refused at once is refused here with a ``ModerationError`` (a bad name, threshold or
    target; fewer than ``CASCADE_MIN_TRAIN_LABELS`` trusted labels), before anything is queued.
    Idempotent: while a training is queued or running, asking again returns that one (a double click
    trains once). One queued for ``RESEND_AFTER`` is sent again (a lost message); one running for
    ``STALLED_AFTER`` lost its worker: it is marked failed and a new one is queued.
    """
    from moderation.inference.stage1.routing import check_target, check_threshold
    from moderation.labels.selectors import item_labels_trusted

    cascade_artifact_path(name)
    if threshold is not None:
        check_threshold(threshold)
    else:
        check_target(settings.CASCADE_TARGET_ACCURACY if target_accuracy is None else target_accuracy)
    now = timezone.now()
    with transaction.atomic():
        # One request at a time (two tabs, a double click, a beat tick): a transaction-scoped lock,
        # since there may be no row yet to lock.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('moderation.cascade_training'))")
        open_ = CascadeTraining.objects.filter(status__in=CascadeTraining.OPEN).first()
        if open_ is not None and open_.status == CascadeTraining.Status.RUNNING:
            if not open_.is_stalled(now=now):
                return open_
            open_.status, open_.finished_at = CascadeTraining.Status.FAILED, now
            open_.error = (
                f"No result {CascadeTraining.STALLED_AFTER} after it started: its worker was lost. "
                "A new training was queued."
            )
            open_.save(update_fields=["status", "error", "finished_at"])
        elif open_ is not None:
            if open_.may_resend(now=now):
                open_.sent_at = now
                open_.save(update_fields=["sent_at"])
                enqueue("moderation.inference.tasks.train_cascade", open_.pk, robust=True)
            return open_
        labelled = item_labels_trusted().count()
        if labelled < settings.CASCADE_MIN_TRAIN_LABELS:
            raise ModerationError(
                f"Stage 1 is trained from at least {settings.CASCADE_MIN_TRAIN_LABELS} labelled items "
                f"(CASCADE_MIN_TRAIN_LABELS); there are {labelled}. Review or import more first: "
                "a model fitted on fewer would auto-decide live items on too little evidence."
            )
        training = CascadeTraining.objects.create(
            name=name,
            threshold=threshold,
            target_accuracy=target_accuracy if threshold is None else None,
            trigger=trigger,
            requested_by=by,
            sent_at=now,
        )
        # robust: a broker that does not answer leaves it queued (shown so); asking again after
        # RESEND_AFTER sends it again.
        enqueue("moderation.inference.tasks.train_cascade", training.pk, robust=True)
    logger.info("stage-1 training %s (%s) queued by %s", training.pk, name, by.username if by else trigger)
    return training


def cascade_training_run(*, training_id: int) -> CascadeTraining:
    """The task's body: train the queued request (``cascade_train``) and record how it ended.

    Idempotent: only a queued request is started (a second delivery of its message finds it running
    or finished and leaves it). Another training running is recorded as skipped (with ``CASCADE_TRAINING_BUSY``);
    a refusal or any error as failed with a readable reason.
    """
    training, start = job_start(CascadeTraining, training_id)
    if not start:
        return training
    fields: dict[str, Any]
    try:
        model = cascade_train(
            name=training.name, threshold=training.threshold, target_accuracy=training.target_accuracy
        )
    except CascadeTrainingBusy as exc:
        fields = {"status": CascadeTraining.Status.SKIPPED, "error": str(exc)}
    except ModerationError as exc:
        fields = {"status": CascadeTraining.Status.FAILED, "error": str(exc)}
    except Exception as exc:  # recorded, never left "running"
        logger.exception("stage-1 training %s failed", training_id)
        detail = (str(exc).strip() or type(exc).__name__)[:400]
        fields = {"status": CascadeTraining.Status.FAILED, "error": f"Training failed: {type(exc).__name__}: {detail}"}
    else:
        fields = {"status": CascadeTraining.Status.DONE, "model": model, "trained_on": model.trained_on}
    return job_finish(CascadeTraining, training_id, **fields)  # one marked stalled meanwhile is left failed
