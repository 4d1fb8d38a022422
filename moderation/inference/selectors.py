from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import Count, Exists, F, Func, Max, OuterRef, Q, QuerySet, Value

from moderation.inference.cascade_models import CascadeModel, CascadeTraining
from moderation.inference.models import Decision, DecisionRerun, MissingDecisionRepair, ModelVersion
from moderation.inference.stage1.inputs import TextItem, stage1_input
from moderation.labels.models import ItemLabel
from moderation.labels.selectors import item_label_map, item_labels_trusted
from moderation.media.models import Video
from moderation.policies.models import PolicyVersion
from workbench.db import ids_listed
from workbench.text import row_id


def videos_missing_auto_decision(
    *, among: list[int] | None = None, policies: list[int] | None = None
) -> QuerySet[Video]:
    """Decided videos with no decision under some policy that auto-applies: left half-decided by code that saved
    each policy's decision in its own transaction (a run now saves them all at once), or decided before that
    policy was made auto-applied. Each is open to every reviewer under the decisions it has, though the missing
    policy's routing might restrict it; the routing repair queues the missing decisions
    (``decisions_create_missing_for_video``). Videos still in the media pipeline are left to it. ``among``: only
    these video ids (the ops page's ``RoutingRecheck`` rows); ``policies``: the auto-applied policies' ids, read
    already (``auto_applied_policy_ids``)."""
    if among is not None and not among:
        return Video.objects.none()
    policies = auto_applied_policy_ids() if policies is None else policies
    if not policies:
        return Video.objects.none()
    decisions = Decision.objects.filter(video_id=OuterRef("pk"))
    lacking = Q()
    for policy_id in policies:
        lacking |= ~Q(Exists(decisions.filter(policy_version__policy_id=policy_id)))
    in_flight = (Video.Status.UPLOADED, Video.Status.PROCESSING)
    videos = Video.objects.all() if among is None else Video.objects.filter(pk__in=ids_listed(among))
    return videos.filter(Exists(decisions), lacking).exclude(status__in=in_flight).order_by("pk")


def auto_applied_policy_ids() -> list[int]:
    """The policies new videos are decided under (``policy_versions_auto_applied``), by id."""
    from moderation.policies.services import policy_versions_auto_applied

    return sorted({version.policy_id for version in policy_versions_auto_applied()})


def _missing_decision_repairs(*, now: datetime) -> tuple[QuerySet[MissingDecisionRepair], Q, Q]:
    """Repair rows, and what makes one queued (waiting on the infer queue, not lost) or given up (not dismissed)."""
    failed_last = Q(failed_at__isnull=False, failed_at__gte=F("queued_at"))
    queued = ~failed_last & Q(queued_at__gt=now - MissingDecisionRepair.QUEUED_FOR)
    given_up = failed_last & Q(attempts__gte=MissingDecisionRepair.MAX_ATTEMPTS, dismissed_at__isnull=True)
    return MissingDecisionRepair.objects.all(), queued, given_up


def _dismissed_rows() -> QuerySet[MissingDecisionRepair]:
    return MissingDecisionRepair.objects.filter(dismissed_at__isnull=False)


def videos_missing_auto_decision_counted() -> QuerySet[Video]:
    """The half-decided videos (``videos_missing_auto_decision``) the ops page counts: those an operator dismissed
    (``MissingDecisionRepair.dismissed_at``) are listed apart, not counted."""
    dismissed = _dismissed_rows().filter(video_id=OuterRef("pk"))
    return videos_missing_auto_decision().exclude(Exists(dismissed))


def videos_missing_decision_to_queue(*, now: datetime, policies: list[int] | None = None) -> QuerySet[Video]:
    """The half-decided videos (``videos_missing_auto_decision``) the routing repair queues: not those queued
    already (their task is on the infer queue), nor those whose missing decisions failed
    ``MissingDecisionRepair.MAX_ATTEMPTS`` times (the ops page's Retry queues them), nor those dismissed.
    ``policies``: only those lacking a decision under one of these auto-applied policies (a policy's repair)."""
    repairs, queued, given_up = _missing_decision_repairs(now=now)
    waiting = repairs.filter(queued | given_up | Q(dismissed_at__isnull=False), video_id=OuterRef("pk"))
    return videos_missing_auto_decision(policies=policies).exclude(Exists(waiting))


class _ArrayHead(Func):
    """The first ``n`` elements of an array (``(array)[1:n]``)."""

    template = "(%(expressions)s)[1:%(n)d]"


@dataclass(frozen=True)
class MissingDecisionSummary:
    """``missing_decision_summary``: the half-decided videos counted (not dismissed) and the first ids of those,
    how many are queued, given up, dismissed and left to queue, and the ids of those with a try listed on the
    ops page (failed and not dismissed; or, asked for the dismissed ones, dismissed)."""

    counted: int
    first_ids: list[int]
    queued: int
    given_up: int
    dismissed: int
    to_queue: int
    listed_ids: list[int]


def missing_decision_summary(
    *,
    now: datetime,
    first: int,
    dismissed: bool = False,
    among: list[int] | None = None,
    policies: list[int] | None = None,
) -> MissingDecisionSummary:
    """Everything the ops page says of the half-decided videos (``videos_missing_auto_decision``) from one read of
    them: each one's repair row (``MissingDecisionRepair``, one a video) is looked up by its video, and the counts,
    the first ``first`` counted ids and the ids whose tries the page lists are aggregated in the same statement.
    Finding the set is the costly part (every decided video is checked under each auto-applied policy); it was
    found once for each of these figures. ``listed_ids`` holds only videos with a failed (or dismissed) try:
    bounded by the repair rows, which are deleted once a video lacks nothing. ``among``, ``policies``: as
    ``videos_missing_auto_decision``'s."""
    if among is not None and not among:  # none to look at: none found, no statement
        return MissingDecisionSummary(
            counted=0, first_ids=[], queued=0, given_up=0, dismissed=0, to_queue=0, listed_ids=[]
        )
    repairs, queued, given_up = _missing_decision_repairs(now=now)
    row = repairs.filter(video_id=OuterRef("pk"))
    is_dismissed = Exists(row.filter(dismissed_at__isnull=False))
    listed = row.filter(dismissed_at__isnull=False) if dismissed else row.filter(_failed_not_dismissed())
    figures = videos_missing_auto_decision(among=among, policies=policies).aggregate(
        counted=Count("pk", filter=~is_dismissed),
        first_ids=_ArrayHead(ArrayAgg("pk", filter=~is_dismissed, order_by="pk", default=Value([])), n=first),
        queued=Count("pk", filter=Exists(row.filter(queued, dismissed_at__isnull=True))),
        given_up=Count("pk", filter=Exists(row.filter(given_up))),
        dismissed=Count("pk", filter=is_dismissed),
        to_queue=Count("pk", filter=~Exists(row.filter(queued | given_up | Q(dismissed_at__isnull=False)))),
        listed_ids=ArrayAgg("pk", filter=Exists(listed), default=Value([])),
    )
    return MissingDecisionSummary(
        **{k: v for k, v in figures.items() if k not in ("first_ids", "listed_ids")},
        first_ids=list(figures["first_ids"] or []),
        listed_ids=list(figures["listed_ids"] or []),
    )


def missing_decision_counts(*, now: datetime) -> dict[str, int]:
    """Of the half-decided videos: how many are queued (``queued``), given up after failing
    ``MissingDecisionRepair.MAX_ATTEMPTS`` times (``given_up``), left for the repair to queue (``to_queue``) and
    dismissed by an operator (``dismissed``, not counted in the others)."""
    summary = missing_decision_summary(now=now, first=0)
    return {
        "queued": summary.queued,
        "given_up": summary.given_up,
        "dismissed": summary.dismissed,
        "to_queue": summary.to_queue,
    }


def _failed_not_dismissed() -> Q:
    return Q(failed_at__isnull=False, failed_at__gte=F("queued_at"), dismissed_at__isnull=True)


def missing_decisions_failed() -> QuerySet[MissingDecisionRepair]:
    """Half-decided videos whose last try at their missing decisions failed, latest first, with the error; not
    those dismissed (``missing_decisions_dismissed``)."""
    repairs = MissingDecisionRepair.objects.filter(_failed_not_dismissed())
    return repairs.filter(video_id__in=videos_missing_auto_decision().values("pk")).order_by("-failed_at", "pk")


def missing_decisions_dismissed() -> QuerySet[MissingDecisionRepair]:
    """Half-decided videos an operator dismissed, latest dismissal first."""
    rows = _dismissed_rows().filter(video_id__in=videos_missing_auto_decision().values("pk"))
    return rows.order_by("-dismissed_at", "pk")


def missing_decision_rows(
    *, dismissed: bool = False, limit: int = 50, video_ids: list[int] | None = None
) -> list[dict[str, Any]]:
    """The ops page's list of failed (or, ``dismissed``, of dismissed) tries at missing decisions, first
    ``limit``: each with its video (id, title), the auto-applied policies it still lacks a decision under, the
    error, the failed tries, when, and who dismissed it when. ``video_ids``: those tries' videos, found already
    (``missing_decision_summary``'s ``listed_ids``), so the half-decided videos are not found again."""
    from moderation.policies.services import policy_versions_auto_applied

    if video_ids is None:
        qs = missing_decisions_dismissed() if dismissed else missing_decisions_failed()
    else:
        qs = MissingDecisionRepair.objects.filter(video_id__in=video_ids)
        qs = qs.order_by("-dismissed_at", "pk") if dismissed else qs.order_by("-failed_at", "pk")
    repairs = list(qs.select_related("dismissed_by")[:limit])
    if not repairs:  # nothing to list (the ops page's usual state): no policies, titles or decisions to read
        return []
    video_ids = [r.video_id for r in repairs]
    titles = dict(Video.objects.filter(pk__in=video_ids).values_list("pk", "title"))
    decided: dict[int, set[int]] = {}
    for video_id, policy_id in Decision.objects.filter(video_id__in=video_ids).values_list(
        "video_id", "policy_version__policy_id"
    ):
        decided.setdefault(video_id, set()).add(policy_id)
    auto = {version.policy_id: version.policy.name for version in policy_versions_auto_applied()}
    return [
        {
            "repair": r,
            "video_id": r.video_id,
            "title": titles.get(r.video_id, ""),
            "policies": [name for pk, name in sorted(auto.items()) if pk not in decided.get(r.video_id, set())],
        }
        for r in repairs
    ]


def cascade_model_active() -> CascadeModel | None:
    return CascadeModel.objects.filter(is_active=True).first()


@dataclass
class Stage1TrainingSet:
    items: list[TextItem]
    labels: list[str]
    safe_label: str
    label_order: list[str]
    policy_version: PolicyVersion | None
    watermark: datetime | None  # the newest trusted label among them


def cascade_training_set() -> Stage1TrainingSet:
    """Every video with a trusted label (the one ``item_labels_trusted`` picks), as stage 1 reads it:
    the same ``stage1_input`` of the same ``content_bundle_for`` the serving backend gets."""
    from moderation.inference.services import content_bundle_for
    from moderation.policies.seed import SAFE_LABEL, kuaimod_taxonomy

    policy = PolicyVersion.objects.filter(policy__slug="kuaimod", is_active=True).first()
    taxonomy = policy.taxonomy if policy else kuaimod_taxonomy()
    safe_label = policy.safe_label if policy else SAFE_LABEL
    order = [safe_label] + [tag["key"] for major in taxonomy for tag in major.get("tags", [])]
    watermark = ItemLabel.objects.aggregate(newest=Max("created_at"))["newest"]  # before reading: none is missed
    rows = list(item_labels_trusted().select_related("video").prefetch_related("video__segments", "video__keyframes"))
    return Stage1TrainingSet(
        items=[stage1_input(content_bundle_for(row.video, with_feedback=False)) for row in rows],
        labels=[row.label for row in rows],
        safe_label=safe_label,
        label_order=order,
        policy_version=policy,
        watermark=watermark,
    )


def cascade_training_latest() -> CascadeTraining | None:
    """The newest stage-1 training request (queued, running or how it ended), for the dashboard."""
    return CascadeTraining.objects.select_related("requested_by", "model").first()


def cascade_training_wait(*, training: CascadeTraining | None) -> dict[str, Any] | None:
    """For a training still queued: where its message is in the broker (``workbench.health.broker_task_place``) and
    the workers seen consuming the default queue (the ops page's reading, ``workbench.health.queue_workers``).
    ``ahead``: the tasks a worker takes from the queue before it; ``taken``: a worker holds it already (prefetched
    behind the task it is on), so nothing on the queue is ahead of it. Under ``./run.sh`` the default queue shares
    the media worker, so a long video import kept a click "queued" for 20 minutes with no word of why. ``error``
    instead when Redis does not answer; ``None`` when no training is queued.

    The count was the queue's length less one (this training's own message): one low once a worker had taken the
    message, which then no longer waits on the queue, and counting the tasks queued after it as ahead of it."""
    from workbench.health import broker_task_place, queue_workers
    from workbench.queues import TaskQueue

    if training is None or training.status != CascadeTraining.Status.QUEUED:
        return None
    try:
        row = next(r for r in queue_workers() if r["queue"] == TaskQueue.DEFAULT.value)
        place = broker_task_place(queue=row["queue"], task=_TRAIN_CASCADE_TASK, first_arg=training.pk)
    except Exception as exc:  # the broker down: the line says so, the page still renders
        return {"error": f"{type(exc).__name__}: {exc}"[:200], "queue": TaskQueue.DEFAULT.value}
    # Found nowhere (a lost message, resent on the next click after RESEND_AFTER): every waiting task is ahead.
    ahead = row["waiting"] if place is None else place.ahead
    return {
        "error": "",
        "queue": row["queue"],
        "ahead": ahead,
        "taken": place is not None and place.taken,
        "workers": row["workers"],
        "seen_seconds": settings.WORKER_SEEN_SECONDS,
    }


_TRAIN_CASCADE_TASK = "moderation.inference.tasks.train_cascade"


def cascade_new_labels(*, model: CascadeModel) -> int:
    """Trusted labels written after the newest one ``model`` was trained on."""
    labels = ItemLabel.objects.all()
    if model.label_watermark is not None:
        labels = labels.filter(created_at__gt=model.label_watermark)
    return labels.count()


@dataclass
class CascadeCurve:
    """Stage 1's risk–coverage curve: accuracy of what it would auto-decide against the share it
    would auto-decide, one point per confidence cut. ``source`` says where the evidence came from."""

    points: list[dict[str, Any]]
    source: str  # "reviewed" (decisions with a trusted label) or "held_out" (the training items' inner folds)
    n: int


def cascade_curve(*, model: CascadeModel | None = None, limit: int = 5000) -> CascadeCurve:
    """From the latest ``limit`` reviewed items stage 1 scored once there are ``CASCADE_MIN_REVIEWED``
    of them; before that, the active model's held-out curve from training. Recomputed on every call, so
    it follows the reviews as they arrive."""
    import numpy as np

    from moderation.inference.stage1.routing import risk_coverage

    model = model or cascade_model_active()
    rows = list(
        Decision.objects.filter(cascade_p_violative__isnull=False)
        .order_by("-created_at")
        .values_list("video_id", "cascade_p_violative", "policy_version__safe_label")[:limit]
    )
    labels = item_label_map(video_ids={video_id for video_id, _, _ in rows})
    seen: set[int] = set()
    scored = []
    for video_id, p, safe_label in rows:
        if video_id in labels and video_id not in seen:  # the latest decision of each item
            seen.add(video_id)
            scored.append((p, labels[video_id] != safe_label))
    if len(scored) >= settings.CASCADE_MIN_REVIEWED:
        p_violative = np.array([p for p, _ in scored])
        violative = np.array([v for _, v in scored])
        return CascadeCurve(risk_coverage(p_violative, (p_violative > 0.5) == violative), "reviewed", len(scored))
    held_out = (model.metrics or {}).get("held_out_curve", []) if model else []
    return CascadeCurve(list(held_out), "held_out", model.trained_on if model else 0)


THRESHOLD_PREVIEW = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
TARGET_PREVIEW = (0.85, 0.9, 0.92, 0.95, 0.98)
CHART_W, CHART_H = 560, 220


def _polyline(points: list[tuple[float, float]], x_range: tuple[float, float], y_range: tuple[float, float]) -> str:
    """SVG polyline coordinates of (x, y) points in a CHART_W x CHART_H box (y grows upward)."""
    (x0, x1), (y0, y1) = x_range, y_range
    out = []
    for x, y in points:
        px = CHART_W * (x - x0) / ((x1 - x0) or 1)
        py = CHART_H * (1 - (min(max(y, y0), y1) - y0) / ((y1 - y0) or 1))
        out.append(f"{px:.1f},{py:.1f}")
    return " ".join(out)


def cascade_targets(*, curve: CascadeCurve, targets: tuple[float, ...] = TARGET_PREVIEW) -> list[dict[str, Any]]:
    """For each target accuracy: the share stage 1 would auto-decide and the accuracy it had there."""
    from moderation.inference.stage1.routing import accuracy_percent, cut_for_target

    rows = []
    for target in targets:
        cut = cut_for_target(curve.points, target)
        point = next((p for p in curve.points if p["cut"] == cut), None) if cut is not None else None
        rows.append(
            {
                "target": target,
                "target_label": accuracy_percent(target),
                "coverage": point["coverage"] if point else 0.0,
                "accuracy": point["accuracy"] if point else None,
                "cut": cut,
                "consequence": target_consequence(coverage=point["coverage"] if point else 0.0),
            }
        )
    return rows


def target_consequence(*, coverage: float) -> str:
    """What routing by a target does to the traffic, from the share of the curve's items it auto-decides: the line
    under the curve and the message after "Route by this target" both say it (a target no cut reaches was set
    with a plain success message, while every item then goes on to the VLM)."""
    if coverage <= 0:
        return "no item is auto-decided: every item goes on to the serving VLM (stage 2)"
    if coverage >= 1:
        return "stage 1 auto-decides every item: none goes on to the serving VLM"
    share = round(coverage * 100)
    shown = "less than 1%" if share < 1 else "more than 99%" if share > 99 else f"{share}%"
    return f"stage 1 auto-decides {shown} of items; the rest go on to the serving VLM (stage 2)"


def cascade_target_row(*, model: CascadeModel, curve: CascadeCurve | None = None) -> dict[str, Any] | None:
    """``cascade_targets``'s row for the target ``model`` routes by (None when it routes by a threshold)."""
    if model.target_accuracy is None:
        return None
    return cascade_targets(curve=curve or cascade_curve(model=model), targets=(model.target_accuracy,))[0]


def cascade_learning_curve_name() -> str:
    """Where ``bench/learning_curve.py`` publishes its result in media storage (the web node reads it there)."""
    from workbench.storage import artifact_name

    return artifact_name("cascade/learning_curve.json")


def cascade_learning_curve() -> dict[str, Any] | None:
    """The last ``bench/learning_curve.py`` result (labels vs locked-fold accuracy, uncertainty vs
    arrival order), drawn on the dashboard; None until the bench has run (or while the store is down)."""
    import json
    from pathlib import Path

    from workbench.storage import StorageError, artifact_local

    legacy = Path(settings.MODELS_DIR) / "cascade" / "learning_curve.json"
    try:
        path = artifact_local(cascade_learning_curve_name(), legacy=legacy)
        if path is None:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        labels = data["labels"]
        lows = data["arrival_median"] + data["uncertainty_median"]
    except (StorageError, OSError, ValueError, KeyError, TypeError):
        return None
    x_range = (min(labels), max(labels))
    y_range = (max(0.0, min(lows) - 0.02), min(1.0, max(lows) + 0.02))
    data["svg"] = {
        order: _polyline(list(zip(labels, data[f"{order}_median"], strict=False)), x_range, y_range)
        for order in ("arrival", "uncertainty")
    }
    data["y_range"], data["x_range"] = y_range, x_range
    return data


def cascade_curve_chart(*, model: CascadeModel | None) -> dict[str, Any]:
    """The risk–coverage curve the dashboard draws, its source, the target rows and the active target."""
    curve = cascade_curve(model=model)
    y_range = (0.5, 1.0)
    target = model.target_accuracy if model is not None else None
    return {
        "curve": curve,
        "svg": _polyline([(p["coverage"], p["accuracy"]) for p in curve.points], (0.0, 1.0), y_range),
        "target_y": CHART_H * (1 - ((target or 0.92) - y_range[0]) / (y_range[1] - y_range[0])),
        "targets": cascade_targets(curve=curve),
        "active": cascade_target_row(model=model, curve=curve) if model is not None else None,
        "width": CHART_W,
        "height": CHART_H,
    }


def cascade_dashboard(*, limit: int = 5000) -> dict[str, Any]:
    """Escalation rate and per-stage accuracy of the cascade over its recent decisions.

    Accuracy is measured against trusted labels (adjudication > review > import) where an item
    has one: binary (violative or not) and exact label.
    """
    qs = Decision.objects.filter(cascade_stage__isnull=False)
    counts = qs.aggregate(total=Count("id"), stage1=Count("id", filter=Q(cascade_stage=1)))
    total, stage1 = counts["total"], counts["stage1"]
    recent = list(
        qs.order_by("-created_at").values(
            "video_id", "cascade_stage", "label", "is_violation", "policy_version__safe_label", "cascade_uncertainty"
        )[:limit]
    )
    # Stage 2 is the serving model. Items it decided with no stage 1 in front (before a stage-1 model
    # was active, or with none) are stage-2 decisions too: counting only decisions routed through the
    # cascade showed "stage 2: 0 labelled items" beside dozens of human-reviewed serving-model verdicts.
    direct = list(
        Decision.objects.filter(cascade_stage__isnull=True)
        .exclude(backend=ModelVersion.Backend.CASCADE_STAGE1)
        .order_by("-created_at")
        .values("video_id", "label", "is_violation", "policy_version__safe_label")[:limit]
    )
    labels = item_label_map(video_ids=[r["video_id"] for r in recent + direct])
    stages: dict[int, dict[str, Any]] = {}
    before: list[dict[str, Any]] = []
    for stage in (1, 2):
        rows: list[dict[str, Any]] = [
            dict(r) for r in recent if r["cascade_stage"] == stage and r["video_id"] in labels
        ]
        if stage == 2:
            seen = {r["video_id"] for r in rows}
            before = [dict(r) for r in direct if r["video_id"] in labels and r["video_id"] not in seen]
            # one verdict per item: its latest serving-model decision
            before = list({r["video_id"]: r for r in reversed(before)}.values())
            rows += before
        binary = sum(1 for r in rows if r["is_violation"] == (labels[r["video_id"]] != r["policy_version__safe_label"]))
        exact = sum(1 for r in rows if r["label"] == labels[r["video_id"]])
        stages[stage] = {
            "labelled": len(rows),
            "without_stage1": len(before) if stage == 2 else 0,
            "binary_accuracy": binary / len(rows) if rows else None,
            "exact_accuracy": exact / len(rows) if rows else None,
        }
    uncertainties = [r["cascade_uncertainty"] for r in recent if r["cascade_uncertainty"] is not None]
    # What each threshold would have escalated of these recent items (stage 1 scored them all).
    preview = (
        [
            {"threshold": t, "escalated": sum(1 for u in uncertainties if u > t) / len(uncertainties)}
            for t in THRESHOLD_PREVIEW
        ]
        if uncertainties
        else []
    )
    from moderation.inference.stage1.routing import accuracy_percent

    active_model = CascadeModel.objects.filter(is_active=True).first()
    target = active_model.target_accuracy if active_model is not None else None
    return {
        "chart": cascade_curve_chart(model=active_model),
        # The target boxes show the target as the curve labels it ("92%"), not the stored float
        # ("0.50000000001"); the form reads a percentage back.
        "target_shown": accuracy_percent(settings.CASCADE_TARGET_ACCURACY if target is None else target),
        "learning": cascade_learning_curve(),
        "threshold_preview": preview,
        "scored": len(uncertainties),
        "total": total,
        "stage1": stage1,
        "stage2": total - stage1,
        "escalation_rate": (total - stage1) / total if total else None,
        "stages": stages,
        "active_model": active_model,
        "models": list(CascadeModel.objects.all()[:20]),
        "training": (training := cascade_training_latest()),
        "training_wait": cascade_training_wait(training=training),
        # Said beside the train button (the refusal said it only after a click): how far from trainable.
        "trusted_labels": item_labels_trusted().count(),
        "min_train_labels": settings.CASCADE_MIN_TRAIN_LABELS,
    }


def model_versions_for_choice() -> list[ModelVersion]:
    """The newest model versions, for a policy's serving-model picker."""
    return list(ModelVersion.objects.order_by("-created_at")[:200])


def model_version_get(raw: str) -> ModelVersion | None:
    pk = row_id(raw)
    return ModelVersion.objects.filter(pk=pk).first() if pk is not None else None


def decision_reruns_latest(*, decision: Decision) -> tuple[DecisionRerun | None, DecisionRerun | None]:
    """(the decision's latest re-run whatever its state, its latest finished re-run with a parsed CoT).

    The evidence baseline is never re-run (its stage 4 is re-derived on the screen): no query for it.
    """
    if decision.backend == ModelVersion.Backend.EVIDENCE_BASELINE:
        return None, None
    reruns = DecisionRerun.objects.filter(decision_id=decision.pk).select_related("requested_by")
    latest = reruns.first()
    if latest is None or (latest.status == DecisionRerun.Status.DONE and latest.cot):
        return latest, latest
    return latest, reruns.filter(status=DecisionRerun.Status.DONE).exclude(cot=[]).first()


def decision_feedback_known_until(*, decision: Decision, fresh: DecisionRerun | None) -> datetime | None:
    """The moment up to which the reasoning on show knew the user feedback: the decision's own time, or
    the latest event a finished re-run's prompt included."""
    if fresh is not None:
        return fresh.feedback_seen_until or fresh.started_at or fresh.created_at
    return decision.created_at
