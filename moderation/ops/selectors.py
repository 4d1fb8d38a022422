"""Operations dashboard numbers: throughput, backlog, SLA, reviewers, model vs human, cascade."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, F, Min, OuterRef, Q, QuerySet, Value
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from moderation.inference.models import Decision, KeptVerdict, MissingDecisionRepair
from moderation.inference.selectors import (
    auto_applied_policy_ids,
    missing_decision_rows,
    videos_missing_auto_decision,
    videos_missing_decision_to_queue,
)
from moderation.labels.models import ItemLabel
from moderation.media.models import Video
from moderation.ops.charts import bar_chart, line_chart
from moderation.ops.checks import SHOWN, ops_routing_checks
from moderation.policies.models import Policy
from moderation.review.agreement import krippendorff_alpha_nominal
from moderation.review.models import AwaitedQueueItem, Review, ReviewQueue, ReviewTask
from moderation.review.selectors import (
    first_video_ids,
    video_review_items,
    videos_routing_stranded,
)
from workbench.pagination import COUNT_CAP, CappedCount, WindowPaginator

OPEN = (ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED)
FAILED_SHOWN = 50  # failed tries at missing decisions listed on the ops page, latest first


def _days(now: datetime, days: int) -> list[datetime]:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days - 1)
    return [start + timedelta(days=i) for i in range(days)]


def _hours(now: datetime, hours: int) -> list[datetime]:
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    return [start + timedelta(hours=i) for i in range(hours)]


def _share(num: int, den: int) -> float | None:
    return num / den if den else None


def _counted_per_slot(qs: QuerySet[Any], *, series: str, slot: Any, late: Q | None = None) -> QuerySet[Any]:
    """``qs`` counted per time slot (``slot``: a ``TruncHour``/``TruncDay``), as ``(series, slot, n, late)`` rows:
    one branch of :func:`ops_series`' union (``late``: the rows also counted apart, 0 when not given)."""
    return (
        qs.annotate(series=Value(series), at=slot)
        .values_list("series", "at")
        .annotate(n=Count("id"), late=Count("id", filter=late) if late is not None else Value(0))
        .order_by()
    )


def ops_series(
    *, now: datetime, hours: int = 24, days: int = 14, only: tuple[str, ...] = ()
) -> dict[str, dict[datetime, tuple[int, int]]]:
    """The page's time series, each ``{slot: (n, late)}``, read in one statement (a UNION ALL of one grouped count
    per series, each the query it was alone, so none is slower; the page made four round trips for them):
    ``decided`` and ``reviewed`` per hour over the last ``hours`` hours (``ops_throughput``), ``sla`` (done, done
    after the deadline) and ``cascade`` (stage decisions, escalated) per day over the last ``days`` days. ``only``:
    those series alone."""
    since_hour, since_day = _hours(now, hours)[0], _days(now, days)[0]
    branches = {
        "decided": lambda: _counted_per_slot(
            Decision.objects.filter(created_at__gte=since_hour), series="decided", slot=TruncHour("created_at")
        ),
        "reviewed": lambda: _counted_per_slot(
            Review.objects.filter(created_at__gte=since_hour), series="reviewed", slot=TruncHour("created_at")
        ),
        "sla": lambda: _counted_per_slot(
            ReviewTask.objects.filter(
                is_gold=False, status=ReviewTask.Status.DONE, completed_at__gte=since_day, deadline__isnull=False
            ),
            series="sla",
            slot=TruncDay("completed_at"),
            late=Q(completed_at__gt=F("deadline")),
        ),
        "cascade": lambda: _counted_per_slot(
            Decision.objects.filter(created_at__gte=since_day, cascade_stage__isnull=False),
            series="cascade",
            slot=TruncDay("created_at"),
            late=Q(cascade_escalated=True),
        ),
    }
    parts = [make() for name, make in branches.items() if not only or name in only]
    found: dict[str, dict[datetime, tuple[int, int]]] = {name: {} for name in branches}
    for series, slot, n, late in parts[0].union(*parts[1:], all=True):
        found[series][slot] = (n, late)
    return found


def ops_throughput(
    *, now: datetime, hours: int = 24, series: dict[str, dict[datetime, tuple[int, int]]] | None = None
) -> dict[str, Any]:
    """Model decisions and human reviews per hour over the last ``hours`` hours, the current hour last (so far).
    The chart and the totals above it cover the same hours: a 48 h chart under "in the last 24 h" read as if
    a day's work were twice what the words said. ``series``: :func:`ops_series` read already (the page's)."""
    slots = _hours(now, hours)
    if series is None:
        series = ops_series(now=now, hours=hours, only=("decided", "reviewed"))
    decided = {h: n for h, (n, _late) in series["decided"].items()}
    reviewed = {h: n for h, (n, _late) in series["reviewed"].items()}
    # Month-day and hour as the daily charts read their days ("12-03 04:00"); "03 04h" read as two bare numbers.
    labels = [f"{h:%m-%d %H}:00" for h in slots]
    d = [decided.get(h, 0) for h in slots]
    r = [reviewed.get(h, 0) for h in slots]
    return {
        "chart": line_chart(labels, {"model decisions": [float(x) for x in d], "human reviews": [float(x) for x in r]}),
        "rows": list(zip(labels, d, r, strict=True)),
        "hours": hours,
        "caption": f"Hours of the last {hours} h (UTC), {labels[0]} to {labels[-1]}, this hour so far",
        "decisions": sum(d),
        "reviews": sum(r),
    }


def open_work_by_queue(*, now: datetime) -> dict[int, dict[str, Any]]:
    """Per queue id (queues with open work only): open non-gold items ``pending`` and ``claimed``, the
    ``oldest`` one's creation time, and how many are ``breached`` (past their SLA deadline at ``now``)."""
    return {
        r["queue_id"]: dict(r)
        for r in ReviewTask.objects.filter(is_gold=False, status__in=OPEN)
        .values("queue_id")
        .annotate(
            pending=Count("id", filter=Q(status=ReviewTask.Status.PENDING)),
            claimed=Count("id", filter=Q(status=ReviewTask.Status.CLAIMED)),
            oldest=Min("created_at"),
            breached=Count("id", filter=Q(deadline__lt=now)),
        )
    }


def ops_backlog(*, now: datetime) -> dict[str, Any]:
    open_rows = open_work_by_queue(now=now)
    rows = []
    for queue in ReviewQueue.objects.order_by("-priority", "name"):
        r: dict[str, Any] = open_rows.get(queue.pk, {})
        oldest = r.get("oldest")
        rows.append(
            {
                "queue": queue,
                "pending": r.get("pending", 0),
                "claimed": r.get("claimed", 0),
                "breached": r.get("breached", 0),
                "oldest_hours": round((now - oldest).total_seconds() / 3600, 1) if oldest else None,
            }
        )
    return {
        "rows": rows,
        # Named as the table beside them and every other screen names queues ("Content tags", not "tags").
        "chart": bar_chart([r["queue"].name for r in rows], [float(r["pending"] + r["claimed"]) for r in rows]),
        "age_chart": bar_chart(
            [r["queue"].name for r in rows], [float(r["oldest_hours"] or 0) for r in rows], color="#a35c00"
        ),
        "total": sum(r["pending"] + r["claimed"] for r in rows),
        "breached": sum(r["breached"] for r in rows),
    }


def ops_sla(
    *, now: datetime, days: int = 14, series: dict[str, dict[datetime, tuple[int, int]]] | None = None
) -> dict[str, Any]:
    slots = _days(now, days)
    if series is None:
        series = ops_series(now=now, days=days, only=("sla",))
    rows = {d: {"done": n, "late": late} for d, (n, late) in series["sla"].items()}
    labels = [f"{d:%m-%d}" for d in slots]
    done = [rows.get(d, {}).get("done", 0) for d in slots]
    late = [rows.get(d, {}).get("late", 0) for d in slots]
    return {
        "chart": line_chart(labels, {"done after the deadline": [float(x) for x in late]}),
        "rows": list(zip(labels, done, late, strict=True)),
        "late_total": sum(late),
        "done_total": sum(done),
    }


def ops_reviews(*, now: datetime, days: int = 14) -> list[dict[str, Any]]:
    """The non-gold reviews of the last ``days`` days, with what both the reviewers' panel and the model-vs-human
    panel read of each: one read for the two (each read the same reviews in a statement of its own)."""
    return [
        dict(r)
        for r in Review.objects.filter(created_at__gte=_days(now, days)[0], task__is_gold=False).values(
            "decision_id", "task__queue_id", "label", "reviewer__username", "created_at", "decision__label"
        )
    ]


def ops_reviewers(*, now: datetime, days: int = 14, reviews: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Reviews and active reviewers per day; agreement per day (Krippendorff α, nominal, and the
    share of multiply-reviewed items whose reviewers all agreed) over items whose reviews ended
    that day. ``reviews``: :func:`ops_reviews` read already (the page's)."""
    slots = _days(now, days)
    if reviews is None:
        reviews = ops_reviews(now=now, days=days)
    per_day: dict[datetime, Counter[str]] = defaultdict(Counter)
    for r in reviews:
        per_day[_day(r["created_at"])][r["reviewer__username"]] += 1
    units: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in reviews:
        units[(r["decision_id"], r["task__queue_id"])].append(r)
    by_day_units: dict[datetime, list[list[str]]] = defaultdict(list)
    for rs in units.values():
        if len(rs) >= 2:
            by_day_units[_day(max(r["created_at"] for r in rs))].append([r["label"] for r in rs])
    labels = [f"{d:%m-%d}" for d in slots]
    alpha, agree = [], []
    for d in slots:
        us = by_day_units.get(d, [])
        alpha.append(krippendorff_alpha_nominal(us) if us else None)
        agree.append(_share(sum(1 for u in us if len(set(u)) == 1), len(us)))
    totals: Counter[str] = Counter(r["reviewer__username"] for r in reviews)
    return {
        "throughput_chart": line_chart(
            labels,
            {
                "reviews": [float(sum(per_day[d].values())) for d in slots],
                "active reviewers": [float(len(per_day[d])) for d in slots],
            },
        ),
        "agreement_chart": line_chart(labels, {"all agreed": agree, "α": alpha}, y_max=1.0, percent=True),
        "rows": [
            (labels[i], sum(per_day[d].values()), len(per_day[d]), len(by_day_units.get(d, [])), agree[i], alpha[i])
            for i, d in enumerate(slots)
        ],
        "top": totals.most_common(10),
    }


def _day(at: datetime) -> datetime:
    return timezone.localtime(at).replace(hour=0, minute=0, second=0, microsecond=0)


def ops_model_vs_human(
    *, now: datetime, days: int = 14, categories: int = 5, reviews: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Per day: share of human reviews that kept the model's label; the same per model category
    (the most reviewed ones); and the confusion (model label × human label) over the window. ``reviews``:
    :func:`ops_reviews` read already (the page's)."""
    slots = _days(now, days)
    rows = reviews if reviews is not None else ops_reviews(now=now, days=days)
    labels = [f"{d:%m-%d}" for d in slots]
    daily: dict[datetime, list[bool]] = defaultdict(list)
    per_cat: dict[str, dict[datetime, list[bool]]] = defaultdict(lambda: defaultdict(list))
    confusion: Counter[tuple[str, str]] = Counter()
    for r in rows:
        day = _day(r["created_at"])
        same = r["label"] == r["decision__label"]
        daily[day].append(same)
        per_cat[r["decision__label"] or "(unparsed)"][day].append(same)
        confusion[(r["decision__label"] or "(unparsed)", r["label"])] += 1
    top = sorted(per_cat, key=lambda c: -sum(len(v) for v in per_cat[c].values()))[:categories]
    overall = [_share(sum(daily[d]), len(daily[d])) for d in slots]
    model_labels = sorted({m for m, _ in confusion})
    human_labels = sorted({h for _, h in confusion})
    return {
        "chart": line_chart(labels, {"agreement": overall}, y_max=1.0, percent=True),
        "category_chart": line_chart(
            labels,
            {c: [_share(sum(per_cat[c][d]), len(per_cat[c][d])) for d in slots] for c in top},
            y_max=1.0,
            percent=True,
        ),
        "rows": [(labels[i], len(daily[d]), overall[i]) for i, d in enumerate(slots)],
        "agreement_total": _share(sum(sum(v) for v in daily.values()), sum(len(v) for v in daily.values())),
        "reviews_total": len(rows),
        "confusion": {
            "model_labels": model_labels,
            "human_labels": human_labels,
            "rows": [(m, [confusion.get((m, h), 0) for h in human_labels]) for m in model_labels],
        },
    }


def ops_cascade(
    *, now: datetime, days: int = 14, series: dict[str, dict[datetime, tuple[int, int]]] | None = None
) -> dict[str, Any]:
    slots = _days(now, days)
    if series is None:
        series = ops_series(now=now, days=days, only=("cascade",))
    rows = {d: {"n": n, "escalated": late} for d, (n, late) in series["cascade"].items()}
    labels = [f"{d:%m-%d}" for d in slots]
    n = [rows.get(d, {}).get("n", 0) for d in slots]
    esc = [rows.get(d, {}).get("escalated", 0) for d in slots]
    rate = [_share(e, t) for e, t in zip(esc, n, strict=True)]
    return {
        "chart": line_chart(labels, {"escalated to the VLM": rate}, y_max=1.0, percent=True),
        "rows": list(zip(labels, n, esc, rate, strict=True)),
        "rate_total": _share(sum(esc), sum(n)),
    }


def ops_failed_videos(*, shown: int = 10) -> dict[str, Any]:
    """The videos that stopped (failed processing or inference), and of those the ones never decided that a retry
    may cure (``retryable``): open only to their uploader and the admins (``video_open_to_q``); one with no uploader
    (a platform's, an import's) to the admins alone, so the dashboard is where they are found and retried (the video
    list's failed filter, then each one's page). Apart from them, the files that are not videos at all or are damaged
    (``Video.FILE_FAULT_KINDS``: no retry can process them; each one's page has Dismiss), with the first ``shown``
    ids: the page said of an uploaded text file that "its uploader or an admin retries it", then in the next line that
    no retry can help. Those dismissed are counted apart, not in ``total``."""
    decided = Decision.objects.filter(video_id=OuterRef("pk"))
    failed = Video.objects.filter(status=Video.Status.FAILED)
    open_ = Q(failure_dismissed_at__isnull=True)
    not_video = Q(error_kind__in=Video.FILE_FAULT_KINDS)
    counts = failed.aggregate(
        total=Count("pk", filter=open_),
        retryable=Count("pk", filter=open_ & ~not_video & ~Q(Exists(decided))),
        no_uploader=Count("pk", filter=open_ & ~not_video & ~Q(Exists(decided)) & Q(created_by__isnull=True)),
        not_video=Count("pk", filter=open_ & not_video),
        dismissed=Count("pk", filter=~open_),
    )
    ids = (
        failed.filter(open_ & not_video).order_by("pk").values_list("pk", flat=True)[:shown]
        if counts["not_video"]
        else []
    )
    return {**counts, "not_video_ids": list(ids)}


def ops_repro_failures(*, shown: int = 10) -> dict[str, Any]:
    """Videos whose reproduction candidates were given up on (media storage stayed unreachable through the
    ``find_candidates`` task's retries): how many, and the latest ``shown`` with their error, each marked ``queued``
    while an operator's retry is on its way; those an operator dismissed are counted apart (``dismissed``), not
    listed."""
    from moderation.reproduction.models import ReproRetrievalFailure

    counts = ReproRetrievalFailure.objects.aggregate(
        total=Count("pk", filter=Q(dismissed_at__isnull=True)),
        dismissed=Count("pk", filter=Q(dismissed_at__isnull=False)),
    )
    listed = ReproRetrievalFailure.objects.filter(dismissed_at__isnull=True).select_related("video")
    rows = list(listed.order_by("-failed_at", "-pk")[:shown])
    now = timezone.now()
    for row in rows:
        row.queued = row.is_queued(now=now)  # type: ignore[attr-defined]
    return {**counts, "rows": rows}


def _awaited_and_kept() -> tuple[dict[str, Any], dict[str, Any]]:
    """How many items queues naming their own model await, and model answers kept for a retry, each with its
    oldest row's time: one statement (a UNION ALL of the two tables' aggregates, each one row, also when empty)."""
    parts = [
        model.objects.annotate(kind=Value(kind)).values_list("kind").annotate(n=Count("pk"), oldest=Min("created_at"))
        for kind, model in (("awaited", AwaitedQueueItem), ("kept", KeptVerdict))
    ]
    found = {kind: {"n": n, "oldest": oldest} for kind, n, oldest in parts[0].union(parts[1], all=True)}
    empty = {"n": 0, "oldest": None}
    return found.get("awaited", empty), found.get("kept", empty)


def ops_routing(*, now: datetime, shown: int = SHOWN, failed_filter: str = "failing") -> dict[str, Any]:
    """Routing that waits on nothing or is missing: stranded videos (``videos_routing_stranded``: closed to all but
    admins for an item no queue will make, or open while a restricted queue awaits theirs), videos whose routing
    older code left inconsistent (``videos_routing_orphaned``, by kind), decided videos
    lacking a decision under an auto-applied policy (``videos_missing_auto_decision``: how many are queued, given
    up after failing, left to queue, and the latest failures with their error), with the first ``shown`` of each
    by id, and how many clicks of the repair (``ROUTING_REPAIR_BATCH`` a click) the rest takes; and the items
    queues naming their own model await now, with the oldest one's age in hours (one waiting for long: its
    model's task on the infer queue is slow or lost); and the model answers kept for a retry, the oldest's age.
    ``failed_filter``: the list of failed tries shows those still failing ("failing") or those an operator
    dismissed ("dismissed"), at most ``FAILED_SHOWN`` of them.

    The inconsistently routed and the half-decided videos are checked among the videos that changed since they
    were last found consistent (``moderation.ops.checks``), not the whole library: exact at each load."""
    # Each whole-library query runs once: a capped count and the first ids from one read (``first_video_ids``),
    # the orphans' three kinds one query each (``routing_orphans_summary``). The stranded check reads its few
    # candidates only, on every load.
    n_stranded, stranded_ids = first_video_ids(videos_routing_stranded(), first=shown)
    # The half-decided videos are found once (``missing_decision_summary``): every figure of them comes from there.
    checks = ops_routing_checks(now=now, shown=shown, dismissed=failed_filter == "dismissed")
    missing, orphans = checks.missing, checks.orphans
    n_missing, missing_ids = CappedCount(missing.counted), missing.first_ids
    counts = {"to_queue": missing.to_queue, "dismissed": missing.dismissed}
    n_orphaned = orphans.videos
    awaited, kept = _awaited_and_kept()
    backlog = max(n_stranded.n, n_orphaned.n, counts["to_queue"])
    return {
        "checked_at": checks.checked_at,
        "stranded": n_stranded.n,
        "stranded_count": n_stranded,
        "stranded_ids": stranded_ids,
        "missing": n_missing.n,
        "missing_count": n_missing,
        "missing_ids": missing_ids,
        # Of the half-decided: queued on the infer queue, given up after failing, left to queue.
        "missing_queued": missing.queued,
        "missing_given_up": missing.given_up,
        "missing_to_queue": counts["to_queue"],
        "missing_dismissed": counts["dismissed"],
        "failed_filter": failed_filter,
        "failed_tabs": [("failing", "failing"), ("dismissed", f"dismissed ({counts['dismissed']})")],
        "missing_failed": missing_decision_rows(
            dismissed=failed_filter == "dismissed", limit=FAILED_SHOWN, video_ids=missing.listed_ids
        ),
        "failed_shown": FAILED_SHOWN,
        "max_attempts": MissingDecisionRepair.MAX_ATTEMPTS,
        "repair_limit": settings.ROUTING_REPAIR_BATCH,
        # Clicks for the largest backlog: at least that many ("+") when a count stopped at its cap.
        "repair_clicks": -(-backlog // settings.ROUTING_REPAIR_BATCH),
        "repair_clicks_exact": n_stranded.exact and n_orphaned.exact,
        # Routing older code left inconsistent (``routing_orphans``): videos, and how many of each kind.
        "orphaned": n_orphaned.n,
        "orphaned_count": n_orphaned,
        "orphaned_ids": orphans.first_ids,
        "orphans": orphans.kinds,
        "repair_backlog": [
            f"{n} {kind}"
            for n, kind in (
                (n_stranded, "stranded"),
                (n_orphaned, "inconsistently routed"),
                (CappedCount(counts["to_queue"]), "half-decided not queued yet"),
            )
            if n.n
        ],
        "kept": kept["n"],
        "kept_oldest_hours": round((now - kept["oldest"]).total_seconds() / 3600, 1) if kept["oldest"] else None,
        "kept_days": settings.KEPT_VERDICT_RETENTION_DAYS,
        "awaited": awaited["n"],
        "awaited_oldest_hours": round((now - awaited["oldest"]).total_seconds() / 3600, 1)
        if awaited["oldest"]
        else None,
    }


def ops_workers() -> dict[str, Any]:
    """The Celery queues, each with the workers seen consuming it and its waiting tasks; ``idle`` names the
    queues no worker consumes. ``error`` instead when Redis does not answer (the page says so, never a 500)."""
    from workbench.health import queue_workers

    try:
        rows = queue_workers()
    except Exception as exc:  # the broker down: the rest of the page still renders
        return {"rows": [], "idle": [], "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"rows": rows, "idle": [r["queue"] for r in rows if not r["workers"]], "error": ""}


def ops_dashboard(*, failed_filter: str = "failing") -> dict[str, Any]:
    now = timezone.now()
    # The time series in one statement, the last 14 days' reviews in one: each panel was a read of its own.
    series = ops_series(now=now)
    reviews = ops_reviews(now=now)
    return {
        "now": now,
        "workers": ops_workers(),
        "failed": ops_failed_videos(),
        "repro_failed": ops_repro_failures(),
        "routing": ops_routing(now=now, failed_filter=failed_filter),
        "throughput": ops_throughput(now=now, series=series),
        "backlog": ops_backlog(now=now),
        "sla": ops_sla(now=now, series=series),
        "reviewers": ops_reviewers(now=now, reviews=reviews),
        "model_human": ops_model_vs_human(now=now, reviews=reviews),
        "cascade": ops_cascade(now=now, series=series),
    }


# --- a video's outcome, for the platform API (GET /api/videos/{id}/verdict) ---------------------------


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "decision_id": decision.pk,
        "label": decision.label,
        "is_violation": decision.is_violation,
        "confidence": decision.confidence,
        "severity": decision.severity,
        "model_version": decision.model_version.name,
        "policy_version": str(decision.policy_version),
        "cascade_stage": decision.cascade_stage,
        "parse_error": bool(decision.parse_error),
        "created_at": decision.created_at,
    }


def video_verdict(*, video: Video) -> dict[str, Any]:
    """The current outcome for ``video``: the model's decision, the human review and adjudication
    if any, the label that stands (adjudication > review > model) with its policy version, and
    whether it is final (nothing more is coming: no open review task, or an adjudicated label).

    ``status``: processing, failed, auto (model only, no review planned), in_review, reviewed,
    adjudicated.
    """
    decisions = list(
        Decision.objects.filter(video=video)
        .select_related("policy_version__policy", "model_version")
        .order_by("created_at", "pk")
    )
    labels = {lab.source: lab for lab in ItemLabel.objects.filter(video=video).select_related("policy_version__policy")}
    tasks = video_review_items(video=video)
    open_tasks = tasks.filter(status__in=[ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED]).count()
    any_tasks = tasks.exists()
    reviews = list(
        Review.objects.filter(decision__video=video, task__is_gold=False)
        .select_related("policy_version")
        .order_by("created_at", "pk")
    )
    auto = decisions[0] if decisions else None
    adjudicated = labels.get(ItemLabel.Source.ADJUDICATION)
    reviewed = labels.get(ItemLabel.Source.REVIEW)

    outcome: dict[str, Any] = {"label": None, "is_violation": None, "policy_version": None, "source": None}

    def _stand(label: str, source: str, policy_version: Any) -> None:
        outcome.update(
            label=label,
            source=source,
            policy_version=str(policy_version) if policy_version is not None else None,
            is_violation=(label != policy_version.safe_label) if policy_version is not None else None,
        )

    if adjudicated is not None:
        status, final = "adjudicated", True
        _stand(adjudicated.label, "adjudication", adjudicated.policy_version)
    elif reviewed is not None:
        status, final = ("in_review", False) if open_tasks else ("reviewed", True)
        _stand(reviewed.label, "review", reviewed.policy_version)
    elif auto is not None:
        status = "in_review" if open_tasks else ("auto" if not any_tasks else "reviewed")
        final = not open_tasks
        _stand(auto.label or auto.policy_version.safe_label, "model", auto.policy_version)
        outcome["is_violation"] = auto.is_violation
    elif video.status == Video.Status.FAILED:
        status, final = "failed", True
    else:
        status, final = "processing", False

    latest_review = reviews[-1] if reviews else None
    return {
        "video_id": video.pk,
        "external_id": video.external_id,
        "status": status,
        "final": final,
        **outcome,
        "error": video.error if video.status == Video.Status.FAILED else "",
        "auto_decision": _decision_dict(auto) if auto is not None else None,
        "human_review": (
            {
                "verdict": latest_review.verdict,
                "label": latest_review.label,
                "severity": latest_review.severity,
                "reviews": len(reviews),
                "settled_label": reviewed.label if reviewed is not None else None,
                "reviewed_at": latest_review.created_at,
            }
            if latest_review is not None
            else None
        ),
        "adjudication": (
            {"label": adjudicated.label, "decided_at": adjudicated.updated_at} if adjudicated is not None else None
        ),
        "open_review_tasks": open_tasks,
    }


POLICY_MISSING_PAGE = 25  # videos per page of a policy's "videos without its verdict"


def ops_policy_missing(*, policy: Policy, page: Any, now: datetime) -> dict[str, Any]:
    """A policy's decided videos that lack a decision under it (``videos_missing_auto_decision``), a page at a
    time: counted as far as ``COUNT_CAP`` ("1,000+"), the page's ``POLICY_MISSING_PAGE`` videos read by id with
    their repair rows (queued, failed, dismissed), and how many of them the repair would queue now. Only an
    auto-applied policy has such videos: a policy deciding on request lacks nothing (``auto_applied`` False, no
    statement)."""
    if policy.pk not in auto_applied_policy_ids():
        return {"auto_applied": False}
    lacking = videos_missing_auto_decision(policies=[policy.pk])
    shown = WindowPaginator(lacking.only("pk", "title", "status", "created_at"), POLICY_MISSING_PAGE, windowed=False)
    window = shown.get_page(page)
    repairs = {r.video_id: r for r in MissingDecisionRepair.objects.filter(video_id__in=[v.pk for v in window])}
    rows = [{"video": video, "repair": repairs.get(video.pk)} for video in window]
    to_queue = videos_missing_decision_to_queue(now=now, policies=[policy.pk]).order_by()[: COUNT_CAP + 1].count()
    return {
        "auto_applied": True,
        "page": window,
        "count": CappedCount.of(shown),
        "rows": rows,
        "to_queue": CappedCount(min(to_queue, COUNT_CAP), to_queue <= COUNT_CAP),
        "batch": settings.ROUTING_REPAIR_BATCH,
    }
