"""Release gate and shadow mode: how a trained model version gets to serve.

* Gate: a candidate may be promoted only when its latest evaluation is *better* than the serving
  version's evaluation on the same evaluation set: above it on the primary metric
  (``TRAINING_GATE_PRIMARY_METRIC``, binary accuracy; by more than ``TRAINING_GATE_MIN_GAIN``) and
  below it on no gated metric by more than that metric's margin (``TRAINING_GATE_MARGINS``). An equal
  candidate is refused: replacing a model by one that is no better only adds risk. Refusals are
  shown with their reasons; promotions and refusals are both written to the audit log.
* Shadow: a candidate decides live items beside the serving model (task ``run_shadow_decision``,
  enqueued once per live decision) without affecting anything; its agreement with the live
  decisions is reported before promotion.

A version serves either globally or for one policy (``Policy.serving_model``); the gate compares
against whatever serves where the candidate would go.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from moderation.inference.backends import get_backend
from moderation.inference.services import (
    content_bundle_for,
    model_version_promote,
    model_version_serving,
    model_version_serving_lock,
)
from moderation.models import Decision, ModelVersion, Policy
from moderation.policies.services import policy_set_serving_model
from moderation.review.services import audit_event_record
from training.errors import GateRefused, TrainingError, training_error_text
from training.evaluation import METRIC_LABELS, evaluation_latest, metric_label
from training.models import EvaluationRun, ShadowDecision, ShadowDeployment
from training.services import gpu_queue_refusal_recorded, gpu_queue_room_check
from workbench.formatting import metric_text
from workbench.queues import INFER_ITEM_TIME_LIMIT_S, enqueue

logger = logging.getLogger(__name__)


@dataclass
class GateResult:
    candidate: ModelVersion
    serving: ModelVersion
    allowed: bool
    reasons: list[str] = field(default_factory=list)
    candidate_run: EvaluationRun | None = None
    serving_run: EvaluationRun | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    needs_evaluation: bool = False
    # No evaluation of the candidate was ever started, or none is queued or running and the last one failed: the
    # screens say the first neutrally ("not evaluated yet"), the second as the failure it is.
    never_evaluated: bool = False
    failed_run: EvaluationRun | None = None


# What TRAINING_GATE_PRIMARY_METRIC and TRAINING_GATE_MARGINS' keys may name (checked at start:
# ``workbench.checks.SETTING_CHOICES``): the evaluation's metrics, less the intervals (pairs, not numbers). A name
# outside them was skipped by the margins (no check at all) and refused every promotion as the primary metric.
GATE_METRICS = tuple(key for key in METRIC_LABELS if not key.endswith("_ci95"))


def gate_margins() -> dict[str, float]:
    return {k: float(v) for k, v in settings.TRAINING_GATE_MARGINS.items()}


def gate_primary() -> tuple[str, float]:
    """The metric a candidate must improve, and by more than how much."""
    return str(settings.TRAINING_GATE_PRIMARY_METRIC), float(settings.TRAINING_GATE_MIN_GAIN)


@dataclass(frozen=True)
class GateReads:
    """What the global gate reads of its evaluations, read once for many candidates (the models screen, where the
    gate of each version read its runs in statements of its own: six or so a version): the globally ``serving``
    version; per model version id its ``latest`` finished evaluation and its latest ``pending`` one (queued or
    running); its latest ``failed`` one; the serving version's latest finished evaluation per evaluation set
    (``serving_latest``)."""

    serving: ModelVersion
    latest: dict[int, EvaluationRun]
    pending: dict[int, EvaluationRun]
    serving_latest: dict[str, EvaluationRun]
    failed: dict[int, EvaluationRun] = field(default_factory=dict)


def gate_reads(*, candidates: list[ModelVersion]) -> GateReads:
    """:class:`GateReads` for ``candidates`` (and the serving version) in four statements, however many there are:
    each "latest" is the row :func:`~training.evaluation.evaluation_latest` would find (the same order, one row a
    version or a set by ``DISTINCT ON``)."""
    serving = model_version_serving()
    ids = sorted({c.pk for c in candidates} | {serving.pk})
    runs = EvaluationRun.objects.select_related("policy_version__policy")
    finished = runs.filter(status=EvaluationRun.Status.SUCCEEDED)
    latest = finished.filter(model_version_id__in=ids).order_by("model_version_id", "-finished_at", "-pk")
    # The latest run of each version in each unfinished state, in one statement: the latest queued or running one
    # is "pending"; the latest failed one tells a version whose evaluation failed from one never evaluated.
    unfinished = (
        runs.filter(
            model_version_id__in=ids,
            status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING, EvaluationRun.Status.FAILED],
        )
        .order_by("model_version_id", "status", "-pk")
        .distinct("model_version_id", "status")
    )
    pending: dict[int, EvaluationRun] = {}
    failed: dict[int, EvaluationRun] = {}
    for run in unfinished:
        into = failed if run.status == EvaluationRun.Status.FAILED else pending
        if run.model_version_id not in into or run.pk > into[run.model_version_id].pk:
            into[run.model_version_id] = run
    serving_latest = finished.filter(model_version=serving).order_by("eval_set_key", "-finished_at", "-pk")
    return GateReads(
        serving=serving,
        latest={run.model_version_id: run for run in latest.distinct("model_version_id")},
        pending=pending,
        serving_latest={run.eval_set_key: run for run in serving_latest.distinct("eval_set_key")},
        failed=failed,
    )


def promotion_check(
    *,
    candidate: ModelVersion,
    margins: dict[str, float] | None = None,
    policy: Policy | None = None,
    reads: GateReads | None = None,
) -> GateResult:
    """Whether ``candidate`` may replace the serving version (globally, or for ``policy``), and if not, why.
    ``reads``: the global gate's evaluations read already for many candidates (:func:`gate_reads`; not with
    ``policy``)."""
    if reads is not None and policy is not None:
        raise ValueError("a policy's gate reads its own serving version: no GateReads with a policy")
    serving = reads.serving if reads is not None else model_version_serving(policy=policy)
    result = GateResult(candidate=candidate, serving=serving, allowed=False)
    if candidate.pk == serving.pk:
        if policy is None:
            result.reasons.append(f"{candidate.name} is already serving.")
        else:
            how = "" if policy.serving_model_id else " as the globally serving model"
            result.reasons.append(f"{candidate.name} already makes new decisions under {policy.name}{how}.")
        return result
    if candidate.metrics.get("no_learning_signal"):
        # Its adapter learned nothing (GRPO: equal rewards in every group): promoting it would only add risk.
        result.reasons.append(f"{candidate.name} learned nothing: {candidate.metrics.get('warning', '')}".strip())
        return result
    result.candidate_run = (
        reads.latest.get(candidate.pk) if reads is not None else evaluation_latest(model_version=candidate)
    )
    if result.candidate_run is None:
        # An evaluation queued or running is said as such: "evaluate it first" read as if the one started was lost.
        pending = (
            reads.pending.get(candidate.pk)
            if reads is not None
            else EvaluationRun.objects.filter(
                model_version=candidate, status__in=[EvaluationRun.Status.QUEUED, EvaluationRun.Status.RUNNING]
            )
            .order_by("-pk")
            .first()
        )
        if pending is not None:
            result.reasons.append(
                f"{candidate.name} has no finished evaluation yet: evaluation #{pending.pk} is "
                f"{pending.get_status_display().lower()}; the gate reads it once it has finished."
            )
        else:
            result.failed_run = (
                reads.failed.get(candidate.pk)
                if reads is not None
                else EvaluationRun.objects.filter(model_version=candidate, status=EvaluationRun.Status.FAILED)
                .order_by("-pk")
                .first()
            )
            result.never_evaluated = result.failed_run is None
            if result.failed_run is not None:
                result.reasons.append(
                    f"{candidate.name} has no finished evaluation: evaluation #{result.failed_run.pk} failed; "
                    "evaluate it again."
                )
            else:
                result.reasons.append(f"{candidate.name} has no finished evaluation; evaluate it first.")
        result.needs_evaluation = True
        return result
    key = result.candidate_run.eval_set_key
    result.serving_run = (
        reads.serving_latest.get(key)
        if reads is not None
        else evaluation_latest(model_version=serving, eval_set_key=key)
    )
    if result.serving_run is None:
        the_set = result.candidate_run.eval_set_label  # in words; the key is for comparing
        result.reasons.append(
            f"The serving version {serving.name} has no evaluation on the same set ({the_set}); evaluate it there "
            "first so the two can be compared."
        )
        result.needs_evaluation = True
        return result
    for metric, margin in (margins or gate_margins()).items():
        new = result.candidate_run.metrics.get(metric)
        old = result.serving_run.metrics.get(metric)
        if new is None or old is None:
            continue
        ok = new >= old - margin
        result.checks.append({"metric": metric, "candidate": new, "serving": old, "margin": margin, "ok": ok})
        if not ok:
            # In the screens' words ("Format validity (outputs that parse)"), not the metric's key.
            result.reasons.append(
                f"{metric_label(metric)} would drop from {metric_text(old)} to {metric_text(new)} "
                f"(allowed drop {metric_text(margin)})."
            )
    primary, min_gain = gate_primary()
    new, old = result.candidate_run.metrics.get(primary), result.serving_run.metrics.get(primary)
    if new is None or old is None:
        result.reasons.append(
            f"The two evaluations do not both report {metric_label(primary)}, so neither can be called better."
        )
    else:
        better = new > old + min_gain
        result.checks.append(
            {"metric": primary, "candidate": new, "serving": old, "min_gain": min_gain, "ok": better, "primary": True}
        )
        if not better:
            result.reasons.append(
                f"{metric_label(primary)} is {metric_text(new)} against the serving version's {metric_text(old)}: not better"
                + (f" by more than {metric_text(min_gain)}" if min_gain else "")
                + ", so there is nothing to gain by replacing it."
            )
    result.allowed = not result.reasons
    return result


def model_version_promote_gated(
    *, candidate: ModelVersion, by: User | None, policy: Policy | None = None
) -> ModelVersion:
    """Promote ``candidate`` to serve new decisions (globally, or under ``policy`` only) if the gate
    allows it; audited either way.

    Raises TrainingError (with the gate's reasons) when refused.
    """
    check = promotion_check(candidate=candidate, policy=policy)
    payload = {
        "scope": policy.slug if policy else "global",
        "candidate": candidate.name,
        "serving": check.serving.name,
        "candidate_evaluation": check.candidate_run.pk if check.candidate_run else None,
        "serving_evaluation": check.serving_run.pk if check.serving_run else None,
        "checks": check.checks,
        "reasons": check.reasons,
    }
    if not check.allowed:
        audit_event_record(actor=by, action="model_promotion_refused", obj=candidate, payload=payload)
        raise GateRefused("Promotion refused: " + " ".join(check.reasons), needs_evaluation=check.needs_evaluation)
    with transaction.atomic():
        # The gate compared the candidate with the model serving when it read: promoted only if that one still
        # serves (under the lock every promotion takes), not over a version someone promoted a moment ago.
        if policy is not None:
            policy = Policy.objects.select_for_update().get(pk=policy.pk)
        model_version_serving_lock()  # a policy without its own model is served by the global one
        now = model_version_serving(policy=policy)
        if now.pk != check.serving.pk:
            raise GateRefused(
                f"Not promoted: {now.name} was made the serving model a moment ago, after the gate compared "
                f"{candidate.name} with {check.serving.name}. Promote again to compare it with {now.name}."
            )
        if policy is not None:
            policy_set_serving_model(policy=policy, model_version=candidate, by=by)
            promoted = candidate
        else:
            promoted = model_version_promote(model_version=candidate)
        ShadowDeployment.objects.filter(model_version=candidate, is_active=True).update(
            is_active=False, stopped_at=timezone.now()
        )
        audit_event_record(actor=by, action="model_promoted", obj=candidate, payload=payload)
    return promoted


def policy_model_choose(*, policy: Policy, model_version: ModelVersion | None, by: User | None) -> ModelVersion:
    """The policy page's model choice: a version goes through the gate (``model_version_promote_gated``,
    audited either way); none lets the policy fall back to the globally serving model.

    Falling back is a rollback to the version already released where it serves (it passed this gate
    there, or is the seeded one), so it is not gated; it is audited like a promotion. Raises TrainingError.
    """
    if model_version is not None:
        return model_version_promote_gated(candidate=model_version, by=by, policy=policy)
    global_model = model_version_serving()
    if policy.serving_model_id is None:
        raise TrainingError(f"{policy.name} already uses the globally serving model ({global_model.name}).")
    with transaction.atomic():
        previous = policy.serving_model
        policy_set_serving_model(policy=policy, model_version=None, by=by)
        audit_event_record(
            actor=by,
            action="model_policy_reset",
            obj=policy,
            payload={
                "scope": policy.slug,
                "previous": previous.name if previous else None,
                "serving": global_model.name,
            },
        )
    return global_model


# --- shadow mode ----------------------------------------------------------------------------------


@gpu_queue_refusal_recorded
@transaction.atomic
def shadow_start(*, model_version: ModelVersion, by: User | None) -> ShadowDeployment:
    """Put a candidate in shadow mode: from now on each live decision queues its decision too (infer queue, one item
    each, ``shadow_decide``). Refused while the GPU queues are full (MAX_QUEUED_GPU_JOBS, the message and audit record
    of a refused training job or evaluation): it adds a GPU decision to every live one, for as long as it runs. The
    decisions of a deployment started are never refused: they follow live traffic, and a gap would skew its agreement
    numbers unseen."""
    if model_version.is_serving:
        raise TrainingError(f"{model_version.name} is serving; shadow mode is for candidates.")
    if ShadowDeployment.objects.filter(model_version=model_version, is_active=True).exists():
        raise TrainingError(f"{model_version.name} is already in shadow mode.")  # said before the GPU queues' state
    gpu_queue_room_check(what="shadow deployment", started=True)  # it queues no job row: no slot to take
    try:
        with transaction.atomic():
            deployment = ShadowDeployment.objects.create(model_version=model_version, started_by=by)
    except IntegrityError:
        raise TrainingError(f"{model_version.name} is already in shadow mode.") from None
    audit_event_record(actor=by, action="model_shadow_started", obj=model_version)
    return deployment


@transaction.atomic
def shadow_stop(*, model_version: ModelVersion, by: User | None) -> None:
    stopped = ShadowDeployment.objects.filter(model_version=model_version, is_active=True).update(
        is_active=False, stopped_at=timezone.now()
    )
    if not stopped:
        raise TrainingError(f"{model_version.name} is not in shadow mode.")
    audit_event_record(actor=by, action="model_shadow_stopped", obj=model_version)


def shadow_decide(*, decision_id: int) -> list[ShadowDecision]:
    """Every active shadow candidate decides the live decision's item; ones already recorded (or running) are skipped.
    A candidate that fails is recorded with the reason and, attempts allowing, a time to try again.

    Each candidate's first try is recorded running (``started_at``) before any model runs, all of them at once, so a
    worker killed on the way (its hard time limit, out of memory) leaves rows the recorder or the beat's sweep turns
    into failed tries (``shadow_tries_stopped``), not a gap nobody sees until the broker redelivers hours later."""
    decision = Decision.objects.select_related("video", "policy_version").filter(pk=decision_id).first()
    if decision is None:
        return []
    claimed = []
    now = timezone.now()
    for deployment in ShadowDeployment.objects.filter(is_active=True).select_related("model_version"):
        version = deployment.model_version
        if version.pk == decision.model_version_id:
            continue
        _, created = ShadowDecision.objects.get_or_create(
            decision=decision, model_version=version, defaults={"attempts": 1, "started_at": now}
        )
        if created:
            claimed.append(version)
    made = []
    for version in claimed:
        outcome = _shadow_outcome(decision, version, attempt=1)
        running = ShadowDecision.objects.filter(
            decision=decision, model_version=version, attempts=1, started_at__isnull=False
        )
        if running.update(**outcome, started_at=None):  # not when the sweep gave this try up meanwhile
            made.append(ShadowDecision.objects.get(decision=decision, model_version=version))
    return made


def _shadow_retry_at(attempt: int, *, now: Any = None) -> Any:
    """When the try after failed try number ``attempt`` is due; None after the last of SHADOW_MAX_ATTEMPTS."""
    if attempt >= int(settings.SHADOW_MAX_ATTEMPTS):
        return None
    return (now or timezone.now()) + timedelta(seconds=shadow_retry_delay(attempt))


def _shadow_outcome(decision: Decision, version: ModelVersion, *, attempt: int) -> dict[str, Any]:
    """The fields of ``version``'s shadow decision of ``decision`` after try number ``attempt``: what it
    decided, or why it could not and when it is tried again (none after the last try)."""
    try:
        backend = get_backend(version.backend, base_model=version.base_model, adapter_path=version.adapter_path)
        [result] = backend.decide_batch([content_bundle_for(decision.video)], decision.policy_version.spec())
    except Exception as exc:  # one candidate failing neither stops the others nor leaves a silent gap
        logger.exception(
            "shadow candidate %s could not decide decision %s (try %d)", version.name, decision.pk, attempt
        )
        return {
            "label": "",
            "parse_error": "",
            "raw_output": "",
            "agrees": False,
            "latency_ms": 0.0,
            "error": training_error_text(exc)[:4000],
            "attempts": attempt,
            "retry_at": _shadow_retry_at(attempt),
        }
    return {
        "label": result.label,
        "parse_error": result.parse_error,
        "raw_output": result.raw_output,
        "agrees": bool(result.label) and not result.parse_error and result.label == decision.label,
        "latency_ms": result.latency_ms or 0.0,
        "error": "",
        "attempts": attempt,
        "retry_at": None,
    }


def shadow_retry_delay(attempts: int) -> float:
    """Seconds from a failed try number ``attempts`` to the next: base·2^(n−1), capped."""
    base = float(settings.SHADOW_RETRY_BASE_SECONDS)
    return min(float(settings.SHADOW_RETRY_MAX_SECONDS), base * 2 ** max(0, attempts - 1))


# A try queued on the infer queue is not queued again by the beat for this long (its message may wait behind
# other GPU work); a message lost meanwhile is queued again after it. A second message for the same try is a no-op.
SHADOW_RETRY_LEASE = timedelta(seconds=2 * INFER_ITEM_TIME_LIMIT_S)
# A try running this long lost its worker: the shadow tasks' hard limit (INFER_ITEM_TIME_LIMIT_S, one item through
# the candidates) plus a margin for the watchdog's own record. Killed without one (out of memory, a node gone), the
# beat's sweep records it failed then, where the broker would redeliver only after CELERY_VISIBILITY_TIMEOUT.
SHADOW_TRY_STALLED_AFTER = timedelta(seconds=INFER_ITEM_TIME_LIMIT_S) + timedelta(minutes=5)


def shadow_tries_stopped(*, running: Any, reason: str, now: Any = None) -> list[int]:
    """Record the running tries in ``running`` (a ShadowDecision queryset) as failed tries with ``reason``: each is
    tried again after the usual backoff, or, that being its last of SHADOW_MAX_ATTEMPTS, stays failed. The one rule
    for a try that ended without an outcome, whoever noticed: the time-limit watchdog or the beat's sweep. Rows
    already finished or taken meanwhile are left alone (locked, skipped when another holds them). Returns their ids."""
    now = now or timezone.now()
    stopped = []
    with transaction.atomic():
        for shadow in (
            running.filter(started_at__isnull=False).select_for_update(skip_locked=True).only("pk", "attempts")
        ):
            retry_at = _shadow_retry_at(shadow.attempts, now=now)
            last = "" if retry_at else f" That was its last try of {int(settings.SHADOW_MAX_ATTEMPTS)}."
            ShadowDecision.objects.filter(pk=shadow.pk).update(
                started_at=None, retry_at=retry_at, error=f"{reason}{last}"[:4000], label="", agrees=False
            )
            stopped.append(shadow.pk)
    return stopped


def shadow_stalled_reason() -> str:
    minutes = int(SHADOW_TRY_STALLED_AFTER.total_seconds() // 60)
    return (
        f"This try left no result: nothing was heard from its worker for {minutes} minutes after it started (the "
        "inference worker was killed, ran out of memory or was restarted)."
    )


def shadow_decisions_retry_due(*, limit: int = 500) -> list[int]:
    """Beat (default queue, SQL only): record tries whose worker was lost (running past ``SHADOW_TRY_STALLED_AFTER``)
    as failed ones, then queue the next try of each failed shadow decision whose time has come, for candidates still
    in shadow mode (a stopped one's wait until it shadows again). Idempotent: the rows are locked and leased, and
    each message names the try it is for. Returns the ids queued."""
    now = timezone.now()
    shadow_tries_stopped(
        running=ShadowDecision.objects.filter(started_at__lt=now - SHADOW_TRY_STALLED_AFTER),
        reason=shadow_stalled_reason(),
        now=now,
    )
    max_attempts = int(settings.SHADOW_MAX_ATTEMPTS)
    shadowing = ShadowDeployment.objects.filter(is_active=True).values("model_version_id")
    with transaction.atomic():
        rows = list(
            ShadowDecision.objects.select_for_update(skip_locked=True)
            .filter(retry_at__lte=now, model_version_id__in=shadowing, started_at__isnull=True)
            .exclude(error="")
            .order_by("retry_at")
            .values_list("pk", "attempts")[:limit]
        )
        # Out of tries (SHADOW_MAX_ATTEMPTS was lowered since it was scheduled): it stays failed.
        spent = [pk for pk, attempts in rows if attempts >= max_attempts]
        rows = [(pk, attempts) for pk, attempts in rows if attempts < max_attempts]
        ShadowDecision.objects.filter(pk__in=spent).update(retry_at=None)
        ShadowDecision.objects.filter(pk__in=[pk for pk, _ in rows]).update(retry_at=now + SHADOW_RETRY_LEASE)
        for pk, attempts in rows:
            enqueue("training.tasks.retry_shadow_decision", pk, attempts + 1)
    return [pk for pk, _ in rows]


def shadow_decision_retry(*, shadow_id: int, attempt: int) -> str:
    """Try number ``attempt`` of a failed shadow decision (infer queue). A redelivered or duplicate message, or a
    row decided meanwhile, changes nothing: the try is taken (recorded running, counted) only over the failed try
    before it, and its result written only over the running try it took.
    Returns "decided", "failed" (to be tried again), "given up" (that was the last try) or "skipped"."""
    taken = (
        ShadowDecision.objects.filter(pk=shadow_id, attempts=attempt - 1, started_at__isnull=True)
        .exclude(error="")
        .update(attempts=attempt, started_at=timezone.now(), retry_at=None)
    )
    if not taken:
        return "skipped"
    shadow = ShadowDecision.objects.select_related("decision__video", "decision__policy_version", "model_version").get(
        pk=shadow_id
    )
    outcome = _shadow_outcome(shadow.decision, shadow.model_version, attempt=attempt)
    written = ShadowDecision.objects.filter(pk=shadow_id, attempts=attempt, started_at__isnull=False).update(
        **outcome, started_at=None
    )
    if not written:
        return "skipped"
    if not outcome["error"]:
        return "decided"
    return "failed" if outcome["retry_at"] is not None else "given up"


_SHADOW_STATS = {
    "n": Count("pk", filter=Q(error="", started_at__isnull=True)),
    "agree": Count("pk", filter=Q(agrees=True)),
    "unparsed": Count("pk", filter=~Q(parse_error="")),
    "failed": Count("pk", filter=~Q(error="")),
    # A failed one whose next try is running now (``started_at``) is being tried again, not given up.
    "retrying": Count("pk", filter=~Q(error="") & (Q(retry_at__isnull=False) | Q(started_at__isnull=False))),
    "given_up": Count("pk", filter=~Q(error="") & Q(retry_at__isnull=True, started_at__isnull=True)),
}


def _shadow_figures(stats: dict[str, Any], last_error: str) -> dict[str, Any]:
    n = stats["n"]
    return {
        **stats,
        "max_attempts": int(settings.SHADOW_MAX_ATTEMPTS),
        "rate": stats["agree"] / n if n else None,
        "last_error": last_error,
    }


def shadow_agreement(*, model_version: ModelVersion) -> dict[str, Any]:
    """How often the candidate agreed with the live decisions it shadowed (``n``: the items it decided), and
    how many it could not decide (``failed``, with the latest reason: ``last_error``): of those, ``retrying``
    are to be tried again and ``given_up`` failed their last try (``max_attempts``)."""
    shadows = ShadowDecision.objects.filter(model_version=model_version)
    stats = shadows.aggregate(**_SHADOW_STATS)
    last_error = ""
    if stats["failed"]:
        last_error = shadows.exclude(error="").order_by("-created_at", "-pk").values_list("error", flat=True)[0]
    return _shadow_figures(stats, last_error)


def shadow_agreements(*, model_versions: list[ModelVersion]) -> dict[int, dict[str, Any]]:
    """:func:`shadow_agreement` of each of ``model_versions`` (by id), in two statements however many there are
    (one when none failed): the counts grouped by version, and each version's latest error."""
    ids = [v.pk for v in model_versions]
    grouped: dict[int, dict[str, Any]] = {
        row["model_version_id"]: {key: value for key, value in dict(row).items() if key != "model_version_id"}
        for row in ShadowDecision.objects.filter(model_version_id__in=ids)
        .values("model_version_id")
        .annotate(**_SHADOW_STATS)
        .order_by()
    }
    failed = [pk for pk, stats in grouped.items() if stats["failed"]]
    errors = dict(
        ShadowDecision.objects.filter(model_version_id__in=failed)
        .exclude(error="")
        .order_by("model_version_id", "-created_at", "-pk")
        .distinct("model_version_id")
        .values_list("model_version_id", "error")
        if failed
        else []
    )
    none = dict.fromkeys(_SHADOW_STATS, 0)
    return {pk: _shadow_figures(grouped.get(pk, none), errors.get(pk, "")) for pk in ids}
