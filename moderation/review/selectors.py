"""Review queue reads: queue counts and everything the review screen shows about one item."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone

from moderation.inference.models import Decision
from moderation.labels.selectors import item_label_standing
from moderation.media.models import Video
from moderation.media.selectors import (
    evidence_times,
    video_comments_from_preview,
    video_comments_preview,
    video_media_for_display,
    video_open_to_others_q,
    video_open_to_q,
    videos_all_open_to,
)
from moderation.policies.models import PolicyVersion
from moderation.policies.selectors import policy_label_groups, policy_label_search_text, policy_version_active
from moderation.review.agreement import cohen_kappa, krippendorff_alpha_nominal
from moderation.review.counts import FOLD_AT, counts_cached, counts_fold, counts_generations, counts_keep
from moderation.review.models import (
    AuditEvent,
    AwaitedQueueItem,
    Review,
    ReviewQueue,
    ReviewQueueCount,
    ReviewSkip,
    ReviewTask,
)
from workbench.db import aggregate_row, aggregate_rows_read, ids_listed, prepared_cursor
from workbench.pagination import CappedCount
from workbench.roles import Perm
from workbench.text import shown_text

# Why a reviewer may pass on an item: a fixed list (review_skip refuses others), so skips count by reason.
SKIP_REASONS = (
    "Not sure: let another reviewer decide",
    "Needs language or context I lack",
    "Media does not play",
    "Conflict of interest",
)

COT_STAGE_KEYS = ("content_extraction", "analysis", "intermediate_check", "user_feedback", "final_judgment")


def _awaited_rows() -> QuerySet[Any]:
    """The awaited rows with their decision's video (``awaited_video``), policy version and policy, each read by the
    decision's primary key, row by row. The rows are few (items waiting on a queue's own model), the decisions the
    whole library: joined, the planner read every decision to hash them against the rows (3,000 pages and the
    larger part of the statement at 100,000 decisions, in each of three statements of the ops page); looked up, a
    few pages a row, whatever the library's size."""
    decision = Decision.objects.filter(pk=OuterRef("decision_id")).order_by()
    return AwaitedQueueItem.objects.annotate(
        awaited_video=Subquery(decision.values("video_id"), output_field=BigIntegerField()),
        awaited_policy_version=Subquery(decision.values("policy_version_id"), output_field=BigIntegerField()),
        awaited_policy=Subquery(decision.values("policy_version__policy_id"), output_field=BigIntegerField()),
    )


def videos_routing_stranded() -> QuerySet[Video]:
    """Videos whose routing waits on nothing that will come, so the visibility rule keeps them from the wrong
    people: ``routed_restricted`` (closed to all but admins) with no item awaited by a restricted queue (a flag
    left by older code or by a path that changed a queue's groups without routing again, e.g. a group deleted),
    the flag cleared while such an item is awaited (open to all before its restricted queue has it), or an item
    awaited by a queue that will never make it (inactive, taking no new decisions, or naming no model of its
    own: an edit that did not route again). The routing repair (``review_routing_repair``) routes them as the
    queues say now."""
    awaited = AwaitedQueueItem.objects.filter(decision__video_id=OuterRef("pk"))
    awaited_restricted = awaited.filter(queue__allowed_groups__isnull=False)
    never_made = awaited.filter(
        Q(queue__is_active=False)
        | Q(queue__routes_new_decisions=False)
        | Q(queue__model_version__isnull=True)
        | Q(queue__model_version_id=F("decision__model_version_id"))
    )
    # Only flagged videos and those with an awaited item can be stranded: a few, whatever the number of videos. Read
    # as one list of ids (a UNION of the flagged ones, from their partial index ``video_routed_restricted``, and the
    # awaited items' videos) and looked up by id: as ``routed_restricted OR id IN (…)`` no index answered, and every
    # video was read (57 ms at 100,000 videos).
    flagged = Video.objects.filter(routed_restricted=True).order_by().values("pk")
    candidates = flagged.union(_awaited_rows().order_by().values("awaited_video"))
    return (
        Video.objects.filter(pk__in=candidates)
        .filter(
            (Q(routed_restricted=True) & ~Exists(awaited_restricted))
            | (Q(routed_restricted=False) & Exists(awaited_restricted))
            | Exists(never_made)
        )
        .order_by("pk")
    )


def _pair_items(*, video: Any, policy_version: Any) -> QuerySet[ReviewTask]:
    """Non-gold items in moderation queues of one (video, policy version) pair: any of its decisions (a queue's
    own model's decision is the item routing owed that queue)."""
    return ReviewTask.objects.filter(
        decision__video_id=video, decision__policy_version_id=policy_version, is_gold=False
    ).exclude(queue__kind=ReviewQueue.Kind.TAGS)


def routing_orphans(*, among: list[int] | None = None) -> dict[str, QuerySet[Any]]:
    """Routing older code left inconsistent in ways ``videos_routing_stranded`` does not see (its flag agrees
    with what is awaited), each a queryset of video ids:

    ``unrouted``: a (video, policy version) whose decisions no moderation queue holds nor awaits. Routing always
    makes an item or an awaited row; before ``AwaitedQueueItem`` existed (0041 rebuilt the rows from routing's
    audit events) an item owed to a queue that was deleted since, or named by no event, left none, and so does
    deleting a queue outside ``review_queues_delete`` (its awaited rows go with it): the video is open but no
    reviewer will ever see it.
    ``other_policy``: a pending item in a queue that takes another policy's decisions (its policy changed after
    routing; claimed and finished items are people's work and stay).
    ``awaited_made``: an awaited row whose queue holds the pair's item already (it waits for good and keeps the
    ops page's "awaited" age growing), or whose queue takes another policy's decisions now (0041 rebuilt rows
    without asking whether the queue still takes the item; its queue-model task, if ever run, would route it
    again, but a lost one leaves it waiting for good).

    A review item cannot point to a deleted queue (``ReviewTask.queue`` protects it); an awaited row of a deleted
    queue is deleted with it, which leaves one of the states above or a stranded flag.

    ``among``: the video ids to look at (the ops page's ``RoutingRecheck`` rows) for ``unrouted`` and
    ``other_policy`` (none: no statement); ``awaited_made`` reads the few awaited rows whatever it says."""
    items = _pair_items(video=OuterRef("video_id"), policy_version=OuterRef("policy_version_id"))
    own_item = ReviewTask.objects.filter(decision_id=OuterRef("pk"), is_gold=False).exclude(
        queue__kind=ReviewQueue.Kind.TAGS
    )
    own_awaited = AwaitedQueueItem.objects.filter(decision_id=OuterRef("pk"))
    awaited = AwaitedQueueItem.objects.filter(
        decision__video_id=OuterRef("video_id"), decision__policy_version_id=OuterRef("policy_version_id")
    )
    made = _pair_items(video=OuterRef("awaited_video"), policy_version=OuterRef("awaited_policy_version")).filter(
        queue_id=OuterRef("queue_id")
    )
    decisions, pending = Decision.objects.all(), ReviewTask.objects.all()
    if among is not None:
        ids = ids_listed(among)
        decisions, pending = decisions.filter(video_id__in=ids), pending.filter(decision__video_id__in=ids)
        if not among:
            decisions, pending = decisions.none(), pending.none()
    return {
        # A decision's own item (most have one), then its own awaited row (the rest, but the orphans, have one) rule
        # it out first, by ``decision_id`` alone: only the few left are checked against the whole pair's items and
        # awaited rows (implied by the pair check: exact). The awaited ones went through the pair's checks, two
        # index walks of five pages each (at 1,000 awaited rows 11,000 of the statement's 15,500 pages).
        "unrouted": decisions.filter(~Exists(own_item), ~Exists(own_awaited), ~Exists(items), ~Exists(awaited)).values(
            "video_id"
        ),
        "other_policy": pending.filter(
            status=ReviewTask.Status.PENDING,
            is_gold=False,
            queue__kind=ReviewQueue.Kind.MODERATION,
            queue__policy__isnull=False,
        )
        .exclude(queue__policy_id=F("decision__policy_version__policy_id"))
        .values("decision__video_id"),
        # The few awaited rows, each with its decision looked up by key (``_awaited_rows``), then its pair's items
        # through the indexes: joined, every decision of the library was read twice (the rows and the subquery).
        "awaited_made": _awaited_rows()
        .filter(
            Exists(made) | (Q(queue__policy__isnull=False) & ~Q(queue__policy_id=F("awaited_policy"))),
        )
        .values("awaited_video"),
    }


def videos_routing_orphaned() -> QuerySet[Video]:
    """Videos with routing older code left inconsistent (``routing_orphans``), in id order: the routing repair
    (``review_routing_repair``) mends them (``review_routing_mend``)."""
    kinds = routing_orphans()
    return Video.objects.filter(
        Q(pk__in=kinds["unrouted"]) | Q(pk__in=kinds["other_policy"]) | Q(pk__in=kinds["awaited_made"])
    ).order_by("pk")


def routing_orphan_counts() -> dict[str, int]:
    """How many videos are in each state of ``routing_orphans`` (every one: a count over the whole library each;
    the ops page reads ``routing_orphans_summary``)."""
    return {kind: Video.objects.filter(pk__in=ids).count() for kind, ids in routing_orphans().items()}


# Routing-health counts the ops page shows exactly up to here, then "1,000+" (the list screens' cap).
ROUTING_COUNT_CAP = 1000


def first_video_ids(
    videos: QuerySet[Video], *, first: int, cap: int = ROUTING_COUNT_CAP
) -> tuple[CappedCount, list[int]]:
    """How many videos ``videos`` finds, exact up to ``cap`` ("1,000+" past it), and the first ``first`` ids in id
    order, from one query reading at most ``max(cap, first) + 1`` ids: the filter is evaluated once, where a count
    and a list of the first ids evaluate it twice."""
    ids = list(videos.order_by("pk").values_list("pk", flat=True)[: max(cap, first) + 1])
    return CappedCount(min(len(ids), cap), len(ids) <= cap), ids[:first]


@dataclass(frozen=True)
class RoutingOrphanSummary:
    """``routing_orphans_summary``: per kind the videos counted (as far as the cap), the union's count, and the
    union's first ids."""

    kinds: dict[str, CappedCount]
    videos: CappedCount
    first_ids: list[int]


def routing_orphans_summary(
    *, first: int, cap: int = ROUTING_COUNT_CAP, among: list[int] | None = None
) -> RoutingOrphanSummary:
    """What the ops page says of ``routing_orphans`` (``among``: as there), each kind's query run once (one query a
    kind): its videos' first ``max(cap, first) + 1`` ids, which give its count (exact up to ``cap``), the union's
    count (exact up to ``cap`` when every kind's is) and the union's first ``first`` ids (each among its kind's
    first ones)."""
    read = max(cap, first) + 1
    # Each kind's own video ids, sorted and cut. Sorted by ``id + 0``, which no index gives in order: the kind's
    # cheapest whole plan (hash joins), then a sort of its few rows; sorted by the column itself the planner walks
    # every decision in video order hoping to stop at the cut (a filter on the videos by id walks every video).
    ids: dict[str, list[int]] = {}
    for kind, q in routing_orphans(among=among).items():
        field = (q.query.values_select or tuple(q.query.annotation_select))[0]
        rows = q.annotate(unindexed=F(field) + 0).values_list("unindexed", flat=True).order_by("unindexed")
        ids[kind] = list(rows.distinct()[:read])
    union = sorted(set().union(*ids.values()))
    exact = all(len(kind_ids) <= cap for kind_ids in ids.values()) and len(union) <= cap
    return RoutingOrphanSummary(
        kinds={kind: CappedCount(min(len(kind_ids), cap), len(kind_ids) <= cap) for kind, kind_ids in ids.items()},
        videos=CappedCount(min(len(union), cap), exact),
        first_ids=union[:first],
    )


def review_queue_may_work(*, user: User, queue: ReviewQueue) -> bool:
    """Reviewers may work a queue open to all, or one restricted to a group they belong to."""
    if not user.is_active or not user.has_perm(Perm.REVIEW_VIDEO):
        return False
    if user.is_superuser:
        return True
    groups = queue.allowed_groups.all()
    return not groups.exists() or groups.filter(user=user).exists()


def review_queue_named_for(
    *, user: User, queue: ReviewQueue | None, hidden: str = "a senior queue", visible: bool | None = None
) -> str:
    """How a screen names ``queue`` (a senior queue an item goes or went to, or the queue an escalation came from)
    to ``user``: “its name” when they may see it (open to all, restricted to a group of theirs, or they are an
    admin), else ``hidden`` ("a senior queue", "another queue"). A moderator of a queue that escalates to a
    restricted one may escalate there without being of its groups, and a senior queue may take escalations from a
    restricted one: naming it told them a queue they may not see, and its name (as ``QUEUE_NOT_OPEN_TEXT`` never
    does). ``visible``: whether it is, when the caller read that for many queues at once
    (``_review_queues_visible``)."""
    if queue is None:
        return ""
    if visible is None:
        visible = _review_queues_visible(ReviewQueue.objects.filter(pk=queue.pk), user=user).exists()
    return f"“{queue.name}”" if visible else hidden


def _review_queues_visible(queues: QuerySet[ReviewQueue], *, user: User) -> QuerySet[ReviewQueue]:
    """The group rule: those of ``queues`` open to all or restricted to a group of ``user``'s (all of them for a
    superuser)."""
    return queues.filter(_review_queue_visible_q(user=user, field="pk"))


def _review_queue_visible_q(*, user: User, field: str) -> Q:
    """The group rule as a filter (or an annotation) of any queryset whose ``field`` is a queue id."""
    if user.is_superuser:
        return Q(pk__isnull=False)
    restricted = ReviewQueue.allowed_groups.through.objects.filter(reviewqueue_id=OuterRef(field))
    return ~Exists(restricted) | Exists(restricted.filter(group__user=user))


def review_queues_for(*, user: User) -> QuerySet[ReviewQueue]:
    """The active queues ``user`` may see and work, highest priority first."""
    if not user.has_perm(Perm.REVIEW_VIDEO):
        return ReviewQueue.objects.none()
    return review_queues_open_to(user=user)


def review_queues_open_to(*, user: User) -> QuerySet[ReviewQueue]:
    """The active queues open to all or restricted to a group of ``user``'s, highest priority first,
    whatever their role: the group rule of ``review_queues_for`` for screens that read a queue's items
    without reviewing them (a labeler's Label Studio export)."""
    return _review_queues_visible(ReviewQueue.objects.filter(is_active=True), user=user).order_by("-priority", "name")


# What a queue's URL answers a reviewer it is not open to, and one that names no queue: the same words, so neither a
# restricted queue's name nor whether it exists is told to those outside its groups (as a hidden video's 404 reads
# as a missing one's: ``video_not_open_reason``).
QUEUE_NOT_OPEN_TEXT = (
    "No such review queue, or it is not open to you: a queue restricted to groups is open only to their members "
    "and the admins. The Review queues page lists every queue you may work."
)


def review_queue_get_for(*, user: User, slug: str) -> ReviewQueue:
    """The queue ``slug`` if ``user`` may work it; else a 404 that reads the same whether it does not exist, is
    switched off or is restricted to groups ``user`` is not in (``QUEUE_NOT_OPEN_TEXT``). It was a 403 naming a
    restricted queue, which told anyone with a review role the queue's name and that it existed."""
    queue = ReviewQueue.objects.filter(slug=slug, is_active=True).first()
    if queue is None or not review_queue_may_work(user=user, queue=queue):
        raise Http404(QUEUE_NOT_OPEN_TEXT)
    return queue


def review_queue_stats(*, queue: ReviewQueue | None = None) -> dict[str, Any]:
    """Counts for one queue (default queue when ``None``); see ``review_queue_overview``."""
    if queue is None:
        queue = ReviewQueue.objects.filter(slug=ReviewQueue.DEFAULT_SLUG).first()
        if queue is None:
            return _empty_stats()
    return review_queue_overview(queues=[queue])[queue.pk]


def _empty_stats() -> dict[str, Any]:
    return {
        "pending": 0,
        "claimed": 0,
        "stale": 0,
        "done": 0,
        "escalated": 0,
        "sla_breached": 0,
        "median_handling_s": None,
    }


def _queue_counts(ids: list[int]) -> dict[int, dict[tuple[str, bool], int]]:
    """Per queue, its non-gold items per (status, done or escalated after the deadline): the sums of its
    ``ReviewQueueCount`` rows, which the database keeps in step with every write, so they equal counting the items
    now. Rows that piled up are folded after reading (``counts_fold``)."""
    counts: dict[int, dict[tuple[str, bool], int]] = defaultdict(dict)
    rows_read: dict[int, int] = defaultdict(int)
    summed = (
        ReviewQueueCount.objects.filter(queue_id__in=ids)
        .values("queue_id", "status", "late")
        .annotate(total=Sum("n"), rows=Count("pk"))
        .order_by()
    )
    for row in summed:
        counts[row["queue_id"]][(row["status"], row["late"])] = row["total"]
        rows_read[row["queue_id"]] += row["rows"]
    piled = [pk for pk, rows in rows_read.items() if rows > FOLD_AT]
    if piled:
        counts_fold(queue_ids=piled)
    return counts


# What changes with the clock rather than with a write, read from the items: leases lapsed (a range over the
# queue's claimed items, ``task_claim_order``), open items past their deadline (a range as long as the breaches,
# ``task_open_deadline``), and the median handling time of the latest 1,000 decided items
# (``task_queue_completed``). None of it reads the queue's pending backlog or its history.
_CLOCK_COUNTS_SQL = """
SELECT q.id,
    (SELECT count(*) FROM moderation_reviewtask t
     WHERE t.queue_id = q.id AND t.status = 'claimed' AND NOT t.is_gold AND t.lease_expires_at <= %(now)s),
    (SELECT count(*) FROM moderation_reviewtask t
     WHERE t.queue_id = q.id AND t.status IN ('pending', 'claimed') AND NOT t.is_gold AND t.deadline < %(now)s),
    (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY h.seconds)
     FROM (
        SELECT EXTRACT(EPOCH FROM t.completed_at - t.claimed_at) AS seconds
        FROM moderation_reviewtask t
        WHERE t.queue_id = q.id AND t.completed_at IS NOT NULL AND t.claimed_at IS NOT NULL
        ORDER BY t.completed_at DESC
        LIMIT 1000
     ) h)
FROM moderation_reviewqueue q WHERE q.id = ANY(%(ids)s)
"""


def review_queue_overview(*, queues: Iterable[ReviewQueue]) -> dict[int, dict[str, Any]]:
    """Per queue: pending / claimed / lapsed (``stale``, claimable again) / done / escalated counts,
    SLA breaches (open past the deadline, or decided after it) and the median handling time
    (claim to decision) of the queue's latest 1,000 decided items. Gold items are not counted.

    Two queries whatever the number of queues, neither reading the queue's items one by one: the counts a
    write changes are kept by the database (``ReviewQueueCount``), those the clock changes are read from short
    index ranges (``_CLOCK_COUNTS_SQL``). A queue of 100,000 waiting items is counted as fast as one of ten.
    """
    queues = list(queues)
    stats = {q.pk: _empty_stats() for q in queues}
    if not queues:
        return stats
    ids = [q.pk for q in queues]
    S = ReviewTask.Status
    for pk, counts in _queue_counts(ids).items():
        for status, key in (
            (S.PENDING, "pending"),
            (S.CLAIMED, "claimed"),
            (S.DONE, "done"),
            (S.ESCALATED, "escalated"),
        ):
            stats[pk][key] = counts.get((status, False), 0) + counts.get((status, True), 0)
        stats[pk]["sla_breached"] = counts.get((S.DONE, True), 0) + counts.get((S.ESCALATED, True), 0)
    with connection.cursor() as cursor:
        cursor.execute(_CLOCK_COUNTS_SQL, {"now": timezone.now(), "ids": ids})
        for queue_id, stale, open_late, median in cursor.fetchall():
            stats[queue_id]["stale"] = stale
            stats[queue_id]["sla_breached"] += open_late
            stats[queue_id]["median_handling_s"] = float(median) if median is not None else None
    return stats


def review_queues_claimable(*, queues: Iterable[ReviewQueue]) -> set[int]:
    """The ids of ``queues`` that hold an item to claim now: a pending one or one whose lease lapsed
    (gold items are made per reviewer, not waiting). One query, an index probe per queue
    (``task_claim_order``) that stops at the first row, whatever the queue's size or history.

    The probe asks for the queue's first item in claim order (``LIMIT 1``), not whether one ``EXISTS``: for an
    EXISTS PostgreSQL estimated that a scan of the whole table would meet a pending row at once (most rows of a
    long queue are pending) and scanned it in physical order, through every decided item stored before the first
    pending one: 100,004 rows, 6 ms, in a queue of 30,000 decided and 10,000 pending items beside one of 100,000."""
    ids = [q.pk for q in queues]
    if not ids:
        return set()
    S = ReviewTask.Status

    def first(**where: Any) -> Subquery:
        tasks = ReviewTask.objects.filter(queue_id=OuterRef("pk"), is_gold=False, **where)
        return Subquery(tasks.order_by("-priority", "deadline", "pk").values("pk")[:1])

    waiting = ReviewQueue.objects.filter(pk__in=ids).annotate(
        first_pending=first(status=S.PENDING),
        first_lapsed=first(status=S.CLAIMED, lease_expires_at__lte=timezone.now()),
    )
    found = waiting.filter(Q(first_pending__isnull=False) | Q(first_lapsed__isnull=False))
    return set(found.values_list("pk", flat=True))


def review_own_uploads_waiting(*, queues: Iterable[ReviewQueue], user: User) -> dict[int, dict[str, Any]]:
    """Per queue holding items to claim now (pending, or a lapsed lease) of videos ``user`` uploaded, which the
    claim never hands them (``NOT_OWN_UPLOAD_SQL``): ``own``, how many, and ``others``, whether any other
    item waits there for them. The queue list and "nothing to claim" say so, so a reviewer seeing items waiting
    is not puzzled by an empty claim. Queues without such items are left out. One probe starting from the user's
    uploads (``Video.created_by``'s index); counting (bounded by their uploads) only when they have items waiting."""
    ids = [q.pk for q in queues]
    if not ids:
        return {}
    S = ReviewTask.Status
    waiting = ReviewTask.objects.filter(
        Q(status=S.PENDING) | Q(status=S.CLAIMED, lease_expires_at__lte=timezone.now()),
        is_gold=False,
    )
    mine = waiting.filter(queue_id__in=ids, decision__video__created_by=user)
    # Most reviewers upload nothing: a polled queue list then counts nothing (one probe of their uploads).
    if not mine.exists():
        return {}
    own = {r["queue_id"]: r["n"] for r in mine.values("queue_id").annotate(n=Count("pk")).order_by()}
    others_left = Exists(waiting.filter(queue_id=OuterRef("pk")).exclude(decision__video__created_by=user))
    with_others = set(ReviewQueue.objects.filter(others_left, pk__in=own).values_list("pk", flat=True))
    return {pk: {"own": n, "others": pk in with_others} for pk, n in own.items()}


# What is still on its way to the review queues: a video not decided yet, in the media pipeline or waiting for its
# model (``Video.Stage.INFERENCE``: the pipeline finished, inference not yet). Its own partial index
# (``video_in_pipeline``) answers it, so counting it stays cheap however large the library.
VIDEOS_IN_PIPELINE = Q(status__in=[Video.Status.UPLOADED, Video.Status.PROCESSING]) | Q(
    status=Video.Status.READY, stage=Video.Stage.INFERENCE
)
# Stopped in the pipeline and not dismissed by an operator: these reach no queue until retried.
VIDEOS_FAILED_UNDECIDED = Q(status=Video.Status.FAILED, failure_dismissed_at__isnull=True)
# Of those, the files that are not videos or are damaged: no retry can process them (only a Dismiss or a new upload).
VIDEOS_UNPROCESSABLE = VIDEOS_FAILED_UNDECIDED & Q(error_kind__in=Video.FILE_FAULT_KINDS)


def review_videos_in_pipeline() -> dict[str, int]:
    """How many videos are still being processed (``processing``) or stopped in the pipeline and have no decision
    yet: the queue list says so instead of "Nothing is waiting" right after an upload or the demo's ingest, and polls
    faster until none is left processing. The stopped ones are split: ``failed`` may pass on a retry,
    ``unprocessable`` are files that are not videos or are damaged (``Video.FILE_FAULT_KINDS``), which no retry helps:
    the list said of an uploaded text file that it "will reach no queue until retried" by an admin, while its own
    page says a retry cannot succeed.

    A count, never a title, and the same for every reviewer: before the model has decided a video, routing has not
    chosen its queue, so whether it will land in a restricted queue (and be hidden from this reviewer) cannot be
    known; a video not decided yet is open only to its uploader and the admins (``video_open_to_q``). A decided
    video is never counted: its items are in the queues already, where the visibility rule applies. One query."""
    videos, counts = _videos_in_pipeline()
    return review_videos_in_pipeline_counts(videos.aggregate(**counts))


def _videos_in_pipeline() -> tuple[QuerySet[Video], dict[str, Count]]:
    decided = Decision.objects.filter(video_id=OuterRef("pk"))
    videos = Video.objects.filter(VIDEOS_IN_PIPELINE | VIDEOS_FAILED_UNDECIDED).filter(~Exists(decided))
    return videos, {
        "processing": Count("pk", filter=VIDEOS_IN_PIPELINE),
        "failed": Count("pk", filter=VIDEOS_FAILED_UNDECIDED & ~Q(error_kind__in=Video.FILE_FAULT_KINDS)),
        "unprocessable": Count("pk", filter=VIDEOS_UNPROCESSABLE),
    }


def review_videos_in_pipeline_row() -> QuerySet[Any]:
    """``review_videos_in_pipeline`` as a single-row query (``workbench.db.aggregate_row``), for a page that reads
    it beside other counts in one statement (the home); ``review_videos_in_pipeline_counts`` reads the row."""
    videos, counts = _videos_in_pipeline()
    return aggregate_row(videos, **counts)


def review_videos_in_pipeline_counts(row: dict[str, Any]) -> dict[str, int]:
    return {key: row.get(key) or 0 for key in ("processing", "failed", "unprocessable")}


def review_nothing_to_claim_text(*, queues: Iterable[ReviewQueue], user: User) -> str:
    """What "Claim next" says when it found nothing for ``user`` in ``queues``: that the items left there are
    their own uploads when that is why (another reviewer decides them), else that the queue is empty."""
    queues = list(queues)
    waiting = review_own_uploads_waiting(queues=queues, user=user)
    own = sum(w["own"] for w in waiting.values())
    if own and not any(w["others"] for w in waiting.values()):
        names = ", ".join(f"“{q.name}”" for q in queues if q.pk in waiting)
        what = "item left in {} is your own upload" if own == 1 else "items left in {} are your own uploads"
        return (
            f"Nothing to claim for you: the {own} {what.format(names)}, and a reviewer never decides their own "
            f"content; another reviewer will take {'it' if own == 1 else 'them'}."
        )
    if _worked_before_waiting(queues=queues, user=user):
        return (
            "Nothing to claim for you: the items left here are ones you escalated or reviewed in another queue, and "
            "another reviewer must decide them (four eyes)."
        )
    return "Queue is empty."


def _worked_before(*, user: User) -> Exists:
    """Whether ``user`` escalated or decided the outer item's copy in another queue (the same decision): the ORM form
    of the claim's ``NOT_WORKED_BEFORE_SQL``, for an outer ``ReviewTask`` query."""
    S = ReviewTask.Status
    worked = ReviewTask.objects.filter(
        decision_id=OuterRef("decision_id"),
        claimed_by=user,
        status__in=(S.DONE, S.ESCALATED),
        is_gold=False,
        queue__kind=OuterRef("queue__kind"),
    ).exclude(pk=OuterRef("pk"))
    return Exists(worked)


def _worked_before_waiting(*, queues: list[ReviewQueue], user: User) -> bool:
    """Whether an item waits in ``queues`` that ``user`` escalated or decided in another queue, which the claim never
    hands them (``NOT_WORKED_BEFORE_SQL``). Asked only once a claim found nothing."""
    S = ReviewTask.Status
    waiting = ReviewTask.objects.filter(
        Q(status=S.PENDING) | Q(status=S.CLAIMED, lease_expires_at__lte=timezone.now()),
        queue_id__in=[q.pk for q in queues],
        is_gold=False,
    )
    return waiting.filter(_worked_before(user=user)).exists()


# The claim's per-reviewer rules (``services._CLAIM_SQL`` applies them to its candidate item ``t`` in every leg, with
# the reviewer's id as ``%(user)s``); kept here so the queue list's probe (``review_queues_left_to_others``) applies
# the very same SQL. A reviewer never decides their own content (separation of duties, admins included): an item
# whose video they uploaded (``Video.created_by``) is never handed to them, not even their own claim on it from before
# this rule (its lease lapses and someone else takes it). ``review_own_uploads_waiting`` tells them why.
NOT_OWN_UPLOAD_SQL = (
    f"AND NOT EXISTS (SELECT 1 FROM {Decision._meta.db_table} od JOIN {Video._meta.db_table} ov ON ov.id = od.video_id"
    " WHERE od.id = t.decision_id AND ov.created_by_id = %(user)s)"
)
# Four eyes: whoever escalated an item, or already reviewed it (the same decision: the same video under the same
# policy version), is never served its copy in another queue (a senior or adjudication queue), not even their own
# claim on it from before this rule. Gold items are per reviewer and score them, so they do not count. Only copies
# of the same work count (queues of the same kind as the item's): tagging a video is not a verdict on it, so its
# tagger may still moderate it, and its moderator tag it.
# ``review_worked_before`` tells the reviewer why when they open such an item; ``review_submit`` refuses it.
NOT_WORKED_BEFORE_SQL = (
    "AND NOT EXISTS (SELECT 1 FROM moderation_reviewtask w JOIN moderation_reviewqueue wq ON wq.id = w.queue_id"
    " WHERE w.decision_id = t.decision_id AND w.id <> t.id"
    " AND w.claimed_by_id = %(user)s AND w.status IN ('done', 'escalated') AND NOT w.is_gold"
    " AND wq.kind = (SELECT tq.kind FROM moderation_reviewqueue tq WHERE tq.id = t.queue_id))"
)

# N reviews from N people: in a queue needing two or more reviews per item (``ReviewQueue.required_reviews``), an item
# whose other copy there (another slot of the same decision) the reviewer holds or decided is never handed to
# them as a new item (their own claim comes back through the claim's ``own`` leg). In a queue needing one review
# the clause is true. The claim's lapsed and pending legs apply it, and so does the queue list's probe, so "Claim
# next" is not offered for a queue whose only waiting items are the other slots of what the reviewer holds.
NOT_MINE_SQL = (
    "AND NOT EXISTS (SELECT 1 FROM moderation_reviewtask m JOIN moderation_reviewqueue mq ON mq.id = m.queue_id"
    " WHERE m.queue_id = t.queue_id AND m.decision_id = t.decision_id AND m.claimed_by_id = %(user)s"
    " AND mq.required_reviews > 1)"
)


def review_open_video_clause(*, user: User) -> tuple[str, Mapping[str, Any]]:
    """``AND EXISTS (…)`` keeping a candidate item ``t`` to items whose video ``user`` may open, with its named
    parameters; empty for those who see every video. Applied by the claim (``services._CLAIM_SQL``) and by the
    queue list's probe of it (``_NOTHING_FOR_USER_SQL``), so the two agree.

    The rule has one home, ``video_open_to_q``: it is compiled here into the SQL of a correlated subquery on the
    item's decision, so the raw claim statement applies exactly what every screen applies (no copy to drift) and
    stays one round trip. Without it a tags item (a tags item opens nothing) of a video restricted after the item
    was made (an admin restricted its moderation queue later) was handed out, and opening it answered 404.
    Whether the user sees every video is read on each call (roles change); the rest depends on the user's id
    only (``video_open_to_others_q``), so its SQL is compiled once per user id and process (~8 ms each time)."""
    if videos_all_open_to(user=user):
        return "", {}
    return _open_video_clause_for(user.pk)


@functools.lru_cache(maxsize=4096)
def _open_video_clause_for(user_pk: int) -> tuple[str, Mapping[str, Any]]:
    rule = video_open_to_others_q(user_pk=user_pk, field="video_id")
    own_decision = Decision.objects.filter(rule, pk=RawSQL("t.decision_id", ())).order_by().values("pk")
    sql, values = own_decision.query.sql_with_params()
    names = iter(range(len(values)))

    def named(match: re.Match[str]) -> str:
        return match.group(0) if match.group(0) == "%%" else f"%(open_{next(names)})s"

    sql = re.sub(r"%%|%s", named, sql)
    return f"AND EXISTS ({sql})", MappingProxyType({f"open_{i}": value for i, value in enumerate(values)})


# Per queue, the first item in claim order the claim could hand the reviewer, pending or with a lapsed lease (the
# claim's legs and index, ``task_claim_order``; ``LIMIT 1`` as in ``review_queues_claimable``): the queues where
# there is none. The claim's rules in the claim's SQL: the reviewer's own uploads, what they worked before (four
# eyes), the other slots of what they hold in a queue needing N reviews (``NOT_MINE_SQL``) and, ``{open_video}``
# (``review_open_video_clause``), items whose video they may not open. Prepared
# (``prepared_cursor``): it runs on every poll of the queue list.
_NOTHING_FOR_USER_SQL = f"""
SELECT q.id FROM moderation_reviewqueue q
WHERE q.id = ANY(%(ids)s)
  AND (SELECT t.id FROM moderation_reviewtask t
       WHERE t.queue_id = q.id AND t.status = 'pending' AND NOT t.is_gold {NOT_OWN_UPLOAD_SQL} {NOT_WORKED_BEFORE_SQL}
         {NOT_MINE_SQL} {{open_video}}
       ORDER BY t.priority DESC, t.deadline, t.id LIMIT 1) IS NULL
  AND (SELECT t.id FROM moderation_reviewtask t
       WHERE t.queue_id = q.id AND t.status = 'claimed' AND t.lease_expires_at <= %(now)s AND NOT t.is_gold
         {NOT_OWN_UPLOAD_SQL} {NOT_WORKED_BEFORE_SQL} {NOT_MINE_SQL} {{open_video}}
       ORDER BY t.priority DESC, t.deadline, t.id LIMIT 1) IS NULL
"""


def review_queues_left_to_others(*, queues: Iterable[ReviewQueue], user: User) -> dict[int, dict[str, int]]:
    """Of ``queues`` (those holding an item to claim now: ``review_queues_claimable``), the ones where the claim
    would hand ``user`` nothing new, because every item waiting there is their own upload (``NOT_OWN_UPLOAD_SQL``),
    one they escalated or decided in another queue (four eyes, ``NOT_WORKED_BEFORE_SQL``), the other slot of an item
    they hold in a queue needing N reviews (``NOT_MINE_SQL``: the list offers "Continue" for it) or one whose video they may
    not open (``review_open_video_clause``: a video routed to a restricted queue of groups they are not in): per such
    queue, ``worked``, how many waiting items are of the second kind. The queue list then offers no "Claim next"
    and says why.

    One prepared query probing each queue for the first item in claim order the claim could hand ``user``
    (``_NOTHING_FOR_USER_SQL``): for a reviewer with no such items it stops at the queue's first item, however
    long the queue; it walks further only past items this reviewer uploaded or worked. Counting follows only for the
    queues where the probe found nothing, whose waiting items are then all of that kind, so it is bounded by the
    reviewer's own work and what is hidden from them, not the queue's size."""
    ids = [q.pk for q in queues]
    if not ids:
        return {}
    now = timezone.now()
    open_video, open_params = review_open_video_clause(user=user)
    with prepared_cursor() as cursor:
        sql = _NOTHING_FOR_USER_SQL.format(open_video=open_video)
        cursor.execute(sql, {"ids": ids, "user": user.pk, "now": now, **open_params})
        none_for_user = [row[0] for row in cursor.fetchall()]
    if not none_for_user:
        return {}
    S = ReviewTask.Status
    waiting = ReviewTask.objects.filter(
        Q(status=S.PENDING) | Q(status=S.CLAIMED, lease_expires_at__lte=now), queue_id__in=none_for_user, is_gold=False
    )
    worked = {
        r["queue_id"]: r["n"]
        for r in waiting.filter(_worked_before(user=user)).values("queue_id").annotate(n=Count("pk")).order_by()
    }
    return {pk: {"worked": worked.get(pk, 0)} for pk in none_for_user}


def review_queue_overview_recent(*, queues: Iterable[ReviewQueue]) -> dict[int, dict[str, Any]]:
    """``review_queue_overview`` at most ``REVIEW_STATS_MAX_AGE_SECONDS`` old, each entry with its ``as_of``
    and ``claimable``: whether the queue holds an item to claim *now* (``review_queues_claimable``).

    The queue list (loaded by every reviewer, then polled every 15 s) and the home page reuse a recent
    count instead of paying for it (two queries, the median's reading up to 1,000 items per queue) on each
    request. A reused count is dropped as soon as a write changes its
    queue (``moderation.review.counts``: routing, escalating, deciding, skipping, releasing), and
    whenever it disagrees with the live ``claimable`` (a lease lapsed, a queue was drained by claims):
    a reviewer is never told a queue is empty while an item waits there, nor offered one that is not.
    """
    queues = list(queues)
    max_age = int(settings.REVIEW_STATS_MAX_AGE_SECONDS)
    claimable = review_queues_claimable(queues=queues)
    generations = counts_generations(q.pk for q in queues) if max_age > 0 else {}
    stats = counts_cached(generations) if max_age > 0 else {}
    stats = {pk: s for pk, s in stats.items() if bool(s["pending"] or s["stale"]) == (pk in claimable)}
    missing = [q for q in queues if q.pk not in stats]
    if missing:
        now = timezone.now()
        fresh = {pk: {**s, "as_of": now} for pk, s in review_queue_overview(queues=missing).items()}
        if max_age > 0:
            counts_keep(fresh, generations, max_age=max_age)
        stats.update(fresh)
    return {pk: {**s, "claimable": pk in claimable} for pk, s in stats.items()}


def review_queue_waiting(*, queue: ReviewQueue) -> int:
    """How many items of ``queue`` wait to be claimed, counted now (the review screen's "N waiting", repainted
    after each decision), unlike the queue list's counts, which may be ``REVIEW_STATS_MAX_AGE_SECONDS`` old and
    would still count the items just claimed. Read from the queue's kept counts (``ReviewQueueCount``): as exact
    as counting its pending items, at the cost of a few rows, however long the queue."""
    counts = _queue_counts([queue.pk]).get(queue.pk, {})
    return sum(n for (status, _late), n in counts.items() if status == ReviewTask.Status.PENDING)


def _tasks_held_by(*, user: User) -> QuerySet[ReviewTask]:
    """The items ``user`` holds that they may still open: like the claim, never an item whose video was hidden from
    them since (its "continue" would be a 404)."""
    held = ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, claimed_by=user)
    return held.filter(video_open_to_q(user=user, field="decision__video_id")).select_related(
        "queue", "decision__video"
    )


# What a reviewer is told of an item they hold whose video was hidden from them since they claimed it: routing sent
# it to a group-restricted queue they are not in (``video_open_to_q``). Their claim is kept from every screen (it would
# open as a 404), so the queue list, "Claim next" and the item's own address say this instead.
HELD_HIDDEN_TEXT = (
    "The item you held in “{queue}” is no longer open to you: its video was routed to a restricted queue after you "
    "claimed it."
)


def review_tasks_held_hidden(*, user: User, queues: Iterable[ReviewQueue] | None = None) -> QuerySet[ReviewTask]:
    """The items ``user`` holds (in ``queues``, or anywhere) whose video is no longer open to them
    (``video_open_to_q``): the claim passes over them and no screen opens them, so they are handed back
    (``review_release_hidden``) for the reviewers who may open them. None for those who see every video."""
    held = ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, claimed_by=user)
    if queues is not None:
        held = held.filter(queue_id__in=[q.pk for q in queues])
    if videos_all_open_to(user=user):
        return held.none()
    return held.exclude(video_open_to_q(user=user, field="decision__video_id")).select_related("queue")


def review_held_hidden_counts(*, user: User) -> dict[int, int]:
    """Per queue id, how many items ``user`` holds there whose video was hidden from them since
    (``review_tasks_held_hidden``): the queue list says so and offers "Claim next", which hands them back."""
    counts: dict[int, int] = defaultdict(int)
    for queue_id in review_tasks_held_hidden(user=user).values_list("queue_id", flat=True):  # a few at most
        counts[queue_id] += 1
    return dict(counts)


def review_task_open_for(*, user: User, queue: ReviewQueue | None = None) -> ReviewTask | None:
    """The item ``user`` currently holds (in ``queue``, or in any queue), to offer "continue": the earliest claimed, the
    one "Claim next" gives back (``services._CLAIM_SQL``'s own claim), not an item claimed ahead of it; never one
    whose video was hidden from ``user`` since (``_tasks_held_by``)."""
    held = _tasks_held_by(user=user)
    if queue is not None:
        held = held.filter(queue=queue)
    return held.order_by("claimed_at", "id").first()


def review_tasks_open_for(*, user: User) -> dict[int, ReviewTask]:
    """Per queue id, the item ``user`` holds there: what ``review_task_open_for`` names for that queue (the one its
    "Claim next" gives back), for a page that lists every queue (a reviewer may hold an item in each). One query."""
    held = _tasks_held_by(user=user).order_by("queue_id", "claimed_at", "id").distinct("queue_id")
    return {task.queue_id: task for task in held}


def review_held_ahead(*, tasks: Iterable[ReviewTask]) -> dict[int, list[int]]:
    """Per held task's id, the items (up to 3) its holder also holds in that queue, claimed ahead for them
    (``review_claim_ahead``: the review screen preloads the next one), in claim order: one query for every queue a
    list shows (it ran one per held queue)."""
    held = {task.pk: task for task in tasks}
    if not held:
        return {}
    rows = (
        ReviewTask.objects.filter(
            queue_id__in={t.queue_id for t in held.values()},
            claimed_by_id__in={t.claimed_by_id for t in held.values()},
            status__in={t.status for t in held.values()},
        )
        .exclude(pk__in=held)
        .order_by("claimed_at", "pk")
        .values_list("pk", "queue_id", "claimed_by_id", "status")
    )
    by_key: dict[tuple[int, int | None, str], list[int]] = {}
    for pk, queue_id, claimed_by_id, status in rows:
        by_key.setdefault((queue_id, claimed_by_id, status), []).append(pk)
    return {pk: by_key.get((t.queue_id, t.claimed_by_id, t.status), [])[:3] for pk, t in held.items()}


def review_held_display(*, task: ReviewTask | None, ahead: list[int] | None = None) -> dict[str, Any] | None:
    """What a queue page says of the item its user holds (``review_task_open_for``): the video, until when the lease
    runs, or that it lapsed (the item stays theirs until someone else claims it: ``ReviewTask.is_held_by``). The
    moderation queues and the tags queue show it alike (``moderation/review/_held_item.html``)."""
    if task is None:
        return None
    until = task.lease_expires_at
    # The item claimed ahead for them (``review_claim_ahead``: the review screen preloads it): named, or the queue's
    # "Claimed 2" beside "You hold item #4" read as if someone else were working the other one.
    if ahead is None:
        ahead = review_held_ahead(tasks=[task])[task.pk]
    return {
        "task": task,
        "video": task.decision.video,
        "until": until,
        "lapsed": until is not None and until <= timezone.now(),
        "ahead": ahead,
    }


def review_gold_accuracy(*, queues: Iterable[ReviewQueue]) -> list[dict[str, Any]]:
    """Each reviewer's score on the gold items (known answers) of ``queues``: answered, correct, accuracy.

    Only the queues named count: a screen passes the ones its viewer may see (``review_queues_for``), as the
    agreement figures beside it do. Over every queue, the agreement page showed each reviewer's gold score in
    group-restricted queues to reviewers outside their groups (who worked there, and how well)."""
    reviews = Review.objects.filter(gold_correct__isnull=False, task__queue_id__in=[q.pk for q in queues])
    rows = list(
        reviews.values("reviewer_id", "reviewer__username")
        .annotate(answered=Count("pk"), correct=Count("pk", filter=Q(gold_correct=True)))
        .order_by("reviewer__username")
    )
    return [
        {
            "reviewer": r["reviewer__username"],
            "answered": r["answered"],
            "correct": r["correct"],
            "accuracy": r["correct"] / r["answered"] if r["answered"] else None,
        }
        for r in rows
    ]


def _agreement(ratings: dict[int, dict[int, str]]) -> dict[str, Any]:
    """κ averaged over reviewer pairs (with ≥ 2 shared items) and α over all items."""
    by_reviewer: dict[int, dict[int, str]] = defaultdict(dict)
    for item, per_reviewer in ratings.items():
        for reviewer, label in per_reviewer.items():
            by_reviewer[reviewer][item] = label
    kappas = []
    for r1, r2 in combinations(sorted(by_reviewer), 2):
        shared = sorted(set(by_reviewer[r1]) & set(by_reviewer[r2]))
        if len(shared) < 2:
            continue
        k = cohen_kappa([by_reviewer[r1][i] for i in shared], [by_reviewer[r2][i] for i in shared])
        if k is not None:
            kappas.append(k)
    multi = [list(v.values()) for v in ratings.values() if len(v) >= 2]
    return {
        "items": len(multi),
        "pairs": len(kappas),
        "kappa": sum(kappas) / len(kappas) if kappas else None,
        "alpha": krippendorff_alpha_nominal(multi),
    }


# The most recent independent reviews the agreement figures are read from. The dashboard and every queue's page (any
# reviewer's GET) read every review the queues ever had into Python and paired their reviewers: a page view cost
# seconds and hundreds of MB once a year's reviews were in, and a moderator reloading it held a web worker each time.
AGREEMENT_MAX_REVIEWS = 20_000


def review_agreement(*, queues: Iterable[ReviewQueue]) -> dict[str, Any]:
    """Agreement of independent reviews (non-gold), per queue and per category (the model's label), over the latest
    ``AGREEMENT_MAX_REVIEWS`` of them (``window``: how many were read, ``capped``: whether older ones were left out).

    Returns ``{"queues": [{"queue", "items", "pairs", "kappa", "alpha"}], "categories": [...], "window",
    "capped"}`` (categories with at least one item reviewed twice);
    κ is the mean Cohen's κ over reviewer pairs, α Krippendorff's α (nominal).
    """
    queues = list(queues)
    rows = list(
        Review.objects.filter(task__queue__in=queues, task__is_gold=False)
        .order_by("-pk")
        .values_list("task__queue_id", "decision_id", "decision__label", "reviewer_id", "label")[
            : AGREEMENT_MAX_REVIEWS + 1
        ]
    )
    capped = len(rows) > AGREEMENT_MAX_REVIEWS
    rows = rows[:AGREEMENT_MAX_REVIEWS]
    per_queue: dict[int, dict[int, dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    per_category: dict[str, dict[tuple[int, int], dict[int, str]]] = defaultdict(lambda: defaultdict(dict))
    for queue_id, decision_id, category, reviewer_id, label in rows:
        per_queue[queue_id][decision_id][reviewer_id] = label
        per_category[category or "(none)"][(queue_id, decision_id)][reviewer_id] = label
    categories = [
        {"category": c, **_agreement(dict(items))}  # type: ignore[arg-type]
        for c, items in sorted(per_category.items())
    ]
    return {
        "queues": [{"queue": q, **_agreement(dict(per_queue.get(q.pk, {})))} for q in queues],
        # Every queue is listed (its load is known); a category only once one of its items has two
        # reviews, so an install with single reviews says "No item has two reviews yet." instead of rows of zeros.
        "categories": [row for row in categories if row["items"]],
        "window": len(rows),
        "capped": capped,
    }


def review_prior_reviews(*, task: ReviewTask, user: User) -> list[Review]:
    """For an adjudication task only: the verdicts that disagreed (other reviewers never see them), each with the
    queue it was given in as ``user`` may read it (``queue_named``: ``review_queue_named_for``; an adjudication queue
    an admin named open to all takes a restricted queue's disagreements, and its name was on the item)."""
    visible = ExpressionWrapper(_review_queue_visible_q(user=user, field="task__queue_id"), output_field=BooleanField())
    reviews: list[Review] = list(
        Review.objects.filter(decision_id=task.decision_id, task__is_gold=False)
        .exclude(task=task)
        .select_related("reviewer", "task__queue")
        .annotate(queue_visible=visible)
        .order_by("created_at")
    )
    for review in reviews:
        review.queue_named = review_queue_named_for(  # type: ignore[attr-defined]
            user=user,
            queue=review.task.queue,
            hidden="another queue",
            visible=review.queue_visible,  # type: ignore[attr-defined]
        )
    return reviews


def review_escalations_into(*, task: ReviewTask, user: User) -> list[dict[str, Any]]:
    """The escalations that handed ``task``'s decision on to ``task``'s queue, as ``user`` reads them: who, from
    which queue (named only when ``user`` may see it: ``review_queue_named_for``), when and why
    (``review_escalate`` records the reason in the audit log, keyed by the escalated task)."""
    sources = {
        str(t.pk): t
        for t in ReviewTask.objects.filter(
            decision_id=task.decision_id, status=ReviewTask.Status.ESCALATED, queue__escalation_queue=task.queue_id
        ).select_related("queue")
    }
    if not sources:
        return []
    events = AuditEvent.objects.filter(action="escalate", object_type="reviewtask", object_id__in=list(sources))
    # Which origin queues the viewer may see, in one statement (one per escalation was an N+1 on a senior's screen).
    origins = ReviewQueue.objects.filter(pk__in={t.queue_id for t in sources.values()})
    visible = set(_review_queues_visible(origins, user=user).values_list("pk", flat=True))
    return [
        {
            "by": event.actor_name or "system",
            "from_queue": review_queue_named_for(
                user=user,
                queue=sources[event.object_id].queue,
                hidden="another queue",
                visible=sources[event.object_id].queue_id in visible,
            ),
            # The audit log is append-only: a reason recorded before reasons were stored clean is cleaned here.
            "reason": shown_text(str(event.payload.get("reason", ""))),
            "at": event.at,
        }
        for event in events.order_by("at", "pk")
    ]


def review_task_get(*, task_id: int, user: User | None = None) -> ReviewTask:
    """One task with its decision, video, policy and model version, plus keyframes and segments prefetched.
    With ``user``: 404 when its video is hidden from them (``videos_open_to``: a restricted queue's content)."""
    tasks = ReviewTask.objects.all()
    if user is not None:
        tasks = tasks.filter(video_open_to_q(user=user, field="decision__video_id"))
    try:
        return _task_with_screen(tasks, task_id)
    except Http404:
        hidden = review_tasks_held_hidden(user=user).filter(pk=task_id).first() if user is not None else None
        if hidden is None:
            raise
        # Their own claim (they saw it when they claimed it): saying why reveals nothing new, and leads on.
        raise Http404(
            f"{HELD_HIDDEN_TEXT.format(queue=hidden.queue.name)} “Claim next” on the Review queues page hands it back to "
            "that queue's reviewers and gives you your next item."
        ) from None


def _task_with_screen(tasks: QuerySet[ReviewTask], task_id: int) -> ReviewTask:
    return get_object_or_404(
        tasks.select_related(
            "decision__video",
            "decision__policy_version__policy",
            "decision__model_version",
            # Its CoT correction, if any (one-to-one): the verdict panel says when an accepted one relabels the video.
            "decision__correction",
            "claimed_by",
            "queue__escalation_queue",
        )
        .prefetch_related("decision__video__keyframes__patches", "decision__video__segments")
        # The comments panel shows the first few, each cut short: read those and the count, never the whole field
        # (a platform may send 1,000 comments of 5,000 characters, 5 MB read for every screen of the item).
        .defer("decision__video__comments")
        .annotate(**video_comments_preview(field="decision__video__comments")),
        pk=task_id,
    )


def review_task_get_or_gone(*, task_id: int, user: User) -> ReviewTask | None:
    """``review_task_get`` for an action on an item; ``None`` when the item no longer exists at all (given back as a
    gold item, its video deleted while its screen was open), so the action says so instead of a bare 404. An item
    that exists but whose video is hidden from ``user`` is still a 404."""
    try:
        return review_task_get(task_id=task_id, user=user)
    except Http404:
        if ReviewTask.objects.filter(pk=task_id).exists():
            raise
        return None


def review_task_held_next(*, user: User) -> ReviewTask | None:
    """The item ``user`` claimed earliest among those they still hold (in any queue): where to go on to."""
    held = ReviewTask.objects.filter(status=ReviewTask.Status.CLAIMED, claimed_by=user)
    return held.filter(video_open_to_q(user=user, field="decision__video_id")).order_by("claimed_at", "pk").first()


def review_task_ahead_for(*, user: User, task: ReviewTask) -> ReviewTask | None:
    """The item ``user`` holds ahead of ``task`` in its queue (claimed ahead so it can be preloaded)."""
    return (
        ReviewTask.objects.filter(queue_id=task.queue_id, status=ReviewTask.Status.CLAIMED, claimed_by=user)
        .exclude(pk=task.pk)
        .select_related("decision__video")
        .defer("decision__video__comments")  # its media are prefetched, its comments never shown from here
        .order_by("claimed_at", "pk")
        .first()
    )


_LABEL_TIME = re.compile(r"^\d+(?:\.\d+)?s(?:\s+|$)|\s+\d+(?:\.\d+)?s$")


def cot_stages_for_display(cot: Any, *, times: dict[tuple[str, Any], float] | None = None) -> list[dict[str, Any]]:
    """The decision's CoT as a list of stages with evidence the template can link.

    ``times`` maps ``(kind, ref)`` to a timestamp, filling in evidence that names a keyframe or
    segment without its time.

    Tolerates malformed model output (non-list, missing keys): what cannot be shown is dropped
    rather than crashing the review screen.
    """
    stages: list[dict[str, Any]] = []
    if not isinstance(cot, list):
        return stages
    for stage in cot:
        if not isinstance(stage, dict):
            continue
        evidence = []
        for ev in stage.get("evidence") or []:
            if not isinstance(ev, dict):
                continue
            t = ev.get("t")
            if not isinstance(t, int | float) and times:
                t = times.get((ev.get("kind", ""), ev.get("ref")))
            kind, ref = ev.get("kind", ""), ev.get("ref")
            label = ev.get("label") or ev.get("kind", "evidence")
            if kind == "segment" and ref == 0:
                # Speech imported as text, cited by decisions made before its time could be unknown: a made-up
                # segment 0 at 0.0 s (no stored segment has id 0). Named as speech, with no time and no seek.
                t, label = None, "speech " + str(label).removeprefix("0.0s ")
            elif isinstance(t, int | float):
                # The screen writes the time once, after the label ("«wechat» @ 0.0s"); evidence recorded with the
                # time in its label too ("0.0s «wechat»", "frame 3s", a bare "3.0s") loses that copy.
                label = _LABEL_TIME.sub("", str(label)).strip()
            evidence.append(
                {
                    "kind": kind,
                    "ref": ref,
                    # What the link jumps to: a keyframe in the strip, a patch box over a frame, or a line of
                    # speech imported without timings (``seg-N`` in the transcript panel).
                    "frame": ref if kind in ("frame", "keyframe") and isinstance(ref, int) else None,
                    "patch": ref if kind == "patch" and isinstance(ref, int) else None,
                    "speech": ref if kind == "speech" and isinstance(ref, int) else None,
                    "label": label,
                    "t": float(t) if isinstance(t, int | float) else None,
                }
            )
        stages.append(
            {
                "key": stage.get("key", ""),
                "title": stage.get("title") or str(stage.get("key", "")).replace("_", " ").capitalize(),
                "text": stage.get("text", ""),
                "evidence": evidence,
            }
        )
    return stages


def review_decision_relabelled(*, decision: Decision) -> Any | None:
    """The accepted CoT correction of ``decision`` when it gives the video another label than the model's, else None.

    The review screen showed the model's label alone: nothing said a labeler's accepted correction had relabelled
    the video. Read from ``review_task_get``'s row (the correction is joined there): no statement of its own."""
    try:
        correction = decision.correction  # type: ignore[attr-defined]
    except ObjectDoesNotExist:
        return None
    if correction.status != "accepted" or correction.label == decision.label:
        return None
    return correction


def review_newer_version_labels(*, version: Any, search: dict[str, str]) -> tuple[Any | None, list[dict[str, str]]]:
    """The policy's active version when it is newer than ``version`` (the one a pending item keeps), and its labels
    whose filter text ``version`` lacks: a new label, or new keywords on one. The override filter found nothing for
    a word only the newer version has ("No label matches", hwalk22 m10); these let it say that vN has it."""
    active = policy_version_active(policy_id=version.policy_id)
    if active is None or active.pk == version.pk or active.number < version.number:
        return None, []
    names = active.label_names()
    newer = policy_label_search_text(version=active)
    return active, [
        {"key": key, "name": names.get(key, key), "search": text}
        for key, text in newer.items()
        if search.get(key) != text
    ]


def review_screen_context(*, task: ReviewTask, user: User, prefetch: bool = False) -> dict[str, Any]:
    """Everything the review screen shows about ``task`` (fetched by ``review_task_get``) to ``user``.

    The media panels' part comes from ``video_media_for_display``, which the annotation screens share;
    whether media is shown unshielded is the caller's (a per-session choice).
    """
    decision = task.decision
    version = decision.policy_version
    spec = version.spec()
    media = video_media_for_display(video=decision.video, comments=video_comments_from_preview(task))
    search = policy_label_search_text(version=version)
    newer_version, newer_labels = review_newer_version_labels(version=version, search=search)
    return {
        "newer_version": newer_version,
        "newer_labels": newer_labels,
        **media,
        "task": task,
        "decision": decision,
        "policy_version": version,
        "model_label_name": version.label_names().get(decision.label, ""),
        "relabelled": (relabelled := review_decision_relabelled(decision=decision)),
        "relabelled_name": version.label_names().get(relabelled.label, "") if relabelled else "",
        "label_groups": [
            {
                "name": group.name,
                "choices": [
                    {
                        "key": key,
                        "name": name,
                        "search": search.get(key, f"{key} {name}".lower()),
                        "severities": " ".join(spec.severities_for(key)),
                    }
                    for key, name in group.choices
                ],
            }
            for group in policy_label_groups(version=version)
        ],
        "severities": [
            {"value": value, "label": label, "hotkey": str(i)}
            for i, (value, label) in enumerate(Review.Severity.choices)
        ],
        "model_severities": " ".join(spec.severities_for(decision.label or version.safe_label)),
        **review_cot_for_display(decision=decision, times=media["times"]),
        # Latency and token counts say something about a model's generation; the rule baseline has none.
        "show_cost": bool(decision.prompt_tokens or decision.completion_tokens),
        "waiting": review_queue_waiting(queue=task.queue),
        # Independence: in queues that take new decisions reviewers never see each other's verdicts;
        # senior and adjudication queues (handed items, not routed ones) see the earlier verdicts.
        "prior_reviews": [] if task.queue.routes_new_decisions else review_prior_reviews(task=task, user=user),
        # A handed-on item says who escalated it, from where and why (the reason was only in the audit log).
        "escalations": [] if task.queue.routes_new_decisions else review_escalations_into(task=task, user=user),
        # An item this reviewer escalated (opened again, e.g. with Back) says where it went, with no live form.
        "escalated_to": review_queue_named_for(user=user, queue=task.queue.escalation_queue)
        if task.status == ReviewTask.Status.ESCALATED
        else "",
        "can_escalate": task.queue.escalation_queue_id is not None,
        "senior_queue_named": review_queue_named_for(user=user, queue=task.queue.escalation_queue),
        "skip_reasons": SKIP_REASONS,
        # An item this reviewer passed on comes back to them when nothing else waits (the claim's order): said, with
        # their reason, or it read as a new item after "back in the queue for another reviewer".
        "skipped_before": ReviewSkip.objects.filter(task=task, user=user).order_by("-at", "-pk").first()
        if task.status == ReviewTask.Status.CLAIMED
        else None,
        "review": getattr(task, "review", None) if task.status == ReviewTask.Status.DONE else None,
        "lease_lapsed": task.status == ReviewTask.Status.CLAIMED
        and task.lease_expires_at is not None
        and task.lease_expires_at <= timezone.now(),
        # The item claimed ahead, whose screen static/review.js fetches so a decision swaps it in at once.
        # A screen that is itself fetched ahead (``prefetch``) names none: the decision's answer does.
        "ahead": review_task_ahead_for(user=user, task=task)
        if task.status == ReviewTask.Status.CLAIMED and not prefetch
        else None,
    }


def review_cot_panel_context(*, task: ReviewTask) -> dict[str, Any]:
    """What the CoT panel of the review screen (its htmx partials ``cot`` and ``rerun``) needs alone:
    ``task`` as ``review_task_get`` fetched it."""
    decision = task.decision
    video = decision.video
    times = evidence_times(keyframes=list(video.keyframes.all()), segments=list(video.segments.all()))
    return {"task": task, "decision": decision, **review_cot_for_display(decision=decision, times=times)}


def review_cot_for_display(*, decision: Any, times: dict[tuple[str, Any], float]) -> dict[str, Any]:
    """The decision's CoT as the review screen shows it: the stages (``cot_stages_for_display``), a
    one-line summary (the final judgment), the video's user-feedback statistics (``feedback``, as
    ``feedback_stats_for`` gives them, read once for both) and the re-run state (``rerun``: the latest
    ``DecisionRerun``; ``rerun_fresh``: the finished one whose reasoning is on show; ``can_rerun``).

    Stage 4 (user feedback) describes the feedback known when the model decided. When events arrived
    after that, the stage is out of date: for the evidence baseline (whose stage 4 is a function of
    the numbers) it is re-derived from the feedback on record now, the original kept beside it; other
    backends' decisions are marked stale with a re-run action, and once a re-run finished its reasoning
    replaces the decision's (which stays available), stale again only when newer feedback arrives.
    """
    from moderation.feedback.models import FeedbackAggregate
    from moderation.feedback.selectors import feedback_stats_from
    from moderation.inference.backends.evidence import feedback_stage_text
    from moderation.inference.models import ModelVersion
    from moderation.inference.selectors import decision_feedback_known_until, decision_reruns_latest

    baseline = decision.backend == ModelVersion.Backend.EVIDENCE_BASELINE
    rerun, fresh = decision_reruns_latest(decision=decision)
    stages = cot_stages_for_display(fresh.cot if fresh is not None else decision.cot, times=times)
    aggregate = FeedbackAggregate.objects.filter(video_id=decision.video_id).first()
    known = decision_feedback_known_until(decision=decision, fresh=fresh)
    late = (
        aggregate is not None
        and aggregate.last_event_at is not None
        and known is not None
        and aggregate.last_event_at > known
    )
    summary = ""
    for stage in stages:
        # A re-run happened because of new feedback: what it made of it is open too.
        stage["open"] = stage["key"] == "analysis" or (fresh is not None and stage["key"] == "user_feedback")
        if stage["key"] == "final_judgment":
            summary = stage["text"]
        if stage["key"] != "user_feedback" or not late:
            continue
        assert aggregate is not None and aggregate.last_event_at is not None
        when = timezone.localtime(aggregate.last_event_at).strftime("%b %-d, %H:%M")
        stage["stale"] = stage["open"] = True
        if baseline:
            stats = {k: v for k, v in feedback_stats_from(aggregate).items() if v not in (None, [], "")}
            stage["original_text"] = stage["text"]
            stage["text"] = feedback_stage_text(stats, is_violation=decision.is_violation)
            stage["rederived"] = True
            stage["stale_note"] = (
                f"User feedback arrived after the model decided (latest event {when}); "
                "this stage is re-derived from the feedback on record now."
            )
        else:
            stage["stale_note"] = (
                f"Stale: user feedback arrived after the model {'re-ran' if fresh else 'decided'} (latest event "
                f"{when}); this stage does not know it. Re-run the model above, or see the user-feedback panel."
            )
    feedback = feedback_stats_from(aggregate) if aggregate is not None else None
    now = timezone.now()
    return {
        "stages": stages,
        "cot_summary": summary,
        "prompt_cut_note": prompt_cut_note((fresh or decision).prompt_cut_tokens),
        "feedback": feedback,
        "rerun": rerun,
        "rerun_fresh": fresh,
        "original_stages": cot_stages_for_display(decision.cot, times=times) if fresh is not None else [],
        # Offered while stage 4 is stale and no re-run is already on its way (the service re-checks both).
        "can_rerun": late and not baseline and not (rerun is not None and rerun.is_open),
        "rerun_resend": rerun is not None and rerun.may_resend(now=now),
        # Running with no progress past the task's time limit: its worker died; polled slowly, not every 2 s.
        "rerun_stalled": rerun is not None and rerun.is_stalled(now=now),
        "rerun_no_worker": rerun is not None
        and rerun.status == rerun.Status.QUEUED
        and not _worker_seen_for(queue="infer"),
    }


def prompt_cut_note(cut_tokens: int) -> str:
    """What a moderator reads when the model decided on a shortened prompt (the backend cut the middle of
    the item's content to fit the model's context); empty when the model read it all."""
    if not cut_tokens:
        return ""
    return (
        f"The model read a shortened text: {cut_tokens:,} tokens of the transcript were left out (the middle "
        "of the item's text, cut to fit the model's context). Its reasoning did not see them: check that part "
        "of the video yourself."
    )


def _worker_seen_for(*, queue: str) -> bool:
    """Whether a worker consuming ``queue`` beat recently (workbench.health); unknown counts as yes."""
    from workbench.health import workers_seen

    try:
        return any(queue in w.get("queues", []) for w in workers_seen())
    except Exception:  # Redis unreachable: the page says nothing rather than guessing
        return True


def _reviews_today_of(user: User) -> QuerySet[Review]:
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Review.objects.filter(reviewer=user, created_at__gte=today)


def review_home_rows(*, user: User) -> dict[str, QuerySet[Any]]:
    """The home's single-row counts (``workbench.db.aggregate_row``): ``user``'s reviews today, overrides and gold
    answers among them, read with the other panels' counts in one statement (``workbench.home``)."""
    return {
        "today": aggregate_row(
            _reviews_today_of(user),
            n=Count("pk"),
            overrides=Count("pk", filter=Q(verdict=Review.Verdict.OVERRIDE)),
            gold=Count("pk", filter=Q(gold_correct__isnull=False)),
        ),
        # The videos still on their way to the queues, said as the queue list says it (hwalk22 m01: the home said
        # nothing of them while an item was claimable): in the same statement, so the home pays no read for it.
        "pipeline": review_videos_in_pipeline_row(),
    }


def review_home_for(*, user: User, counted: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A moderator's home: their queues (pending, SLA breaches, the oldest waiting item), the items they
    hold (one a queue at most), and their own throughput today (decisions, overrides, median seconds per item).
    ``counted``: ``review_home_rows`` read already (else read here)."""
    if counted is None:
        counted = aggregate_rows_read(review_home_rows(user=user))
    queues = list(review_queues_for(user=user))
    overview = review_queue_overview_recent(queues=queues)
    oldest = dict(
        ReviewTask.objects.filter(queue__in=queues, status=ReviewTask.Status.PENDING, is_gold=False)
        .values("queue_id")
        .annotate(oldest=Min("created_at"))
        .values_list("queue_id", "oldest")
        .order_by()
    )
    mine = _reviews_today_of(user)
    done = counted["today"]
    seconds = sorted(
        (completed - claimed).total_seconds()
        for claimed, completed in mine.filter(
            task__claimed_at__isnull=False, task__completed_at__isnull=False
        ).values_list("task__claimed_at", "task__completed_at")[:2000]
        if claimed is not None and completed is not None
    )
    # A reviewer may hold an item in several queues: each is named, and its queue offers "Claim next" (which gives
    # it back) even with nothing pending. Only the earliest was named before, so an item held in a queue whose
    # other items were all done had no way back from here.
    held = review_tasks_open_for(user=user)
    # As on the queue list: a queue whose waiting items are all this reviewer's own uploads or ones they escalated
    # or decided (four eyes) hands them nothing. The home offered "Claim next" there anyway (walk 21: a moderator's
    # own escalation in "Senior review"), and the press landed on the queue list saying there was nothing to claim.
    left_to_others = review_queues_left_to_others(
        queues=[q for q in queues if overview[q.pk]["claimable"] and q.pk not in held], user=user
    )
    rows = [
        {
            "queue": q,
            "stats": overview[q.pk],
            "oldest": oldest.get(q.pk),
            "held": held.get(q.pk),
            "claimable": (overview[q.pk]["claimable"] and q.pk not in left_to_others) or q.pk in held,
            "left_to_others": q.pk in left_to_others,
        }
        for q in queues
    ]
    return {
        "queues": rows,
        "held": sorted(held.values(), key=lambda t: (t.claimed_at, t.pk)),
        "today": {**done, "median_s": seconds[len(seconds) // 2] if seconds else None},
        # How many videos are still on their way (or stopped), as the queue list says, so an upload just made does
        # not read as lost: a count, never a title, read with the other counts (``review_home_rows``).
        "pipeline": review_videos_in_pipeline_counts(counted["pipeline"]),
        "claimable": any(r["claimable"] for r in rows),
    }


# --- the audit log, narrowed to what a staff member may see --------------------------------------------

# An audit event names its object by model name and id (``audit_event_record``). The kinds of object that
# belong to a video, each with the fields naming its video(s): an event about one whose video is hidden
# from a staff member is left out of what they read. Wings above review and the apps above moderation
# register their own kinds (``audit_object_videos_register``, from their AppConfig.ready).
_AUDIT_OBJECT_VIDEOS: dict[str, tuple[type[Model], tuple[str, ...]]] = {}


def audit_object_videos_register(*, model: type[Model], video_fields: tuple[str, ...]) -> None:
    """Say that audit events about ``model`` rows are about the video(s) in ``video_fields`` (video ids)."""
    _AUDIT_OBJECT_VIDEOS[model._meta.model_name or model.__name__.lower()] = (model, video_fields)


def audit_object_model(*, object_type: str) -> type[Model] | None:
    """The model of an event's object when it is a kind that belongs to a video (registered above)."""
    registered = _AUDIT_OBJECT_VIDEOS.get(object_type)
    return registered[0] if registered else None


# The registered kinds' ids are integers (BigAutoField), kept in the log as text; anything else is no row.
_ROW_ID = r"^[0-9]{1,18}$"


def audit_events_with_object_state(*, qs: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
    """``qs`` with ``object_deleted``: true for an event about a registered kind of object (one that belongs
    to a video) whose row no longer exists; false otherwise, also for any other kind (a policy, a user: not
    checked here). One primary-key probe per event, in the same query (the text id is cast only where it
    is a number)."""
    object_pk = Case(When(object_id__regex=_ROW_ID, then=Cast("object_id", BigIntegerField())), default=None)
    gone = [
        When(object_type=object_type, then=~Exists(model._default_manager.filter(pk=OuterRef("audit_object_pk"))))
        for object_type, (model, _fields) in _AUDIT_OBJECT_VIDEOS.items()
    ]
    return qs.annotate(
        audit_object_pk=object_pk,
        object_deleted=Case(*gone, default=Value(False), output_field=BooleanField()),
    )


def audit_events_open_to(*, user: Any, qs: QuerySet[AuditEvent] | None = None) -> QuerySet[AuditEvent]:
    """``qs`` (default: the whole log) without the events about an object of a video hidden from ``user``
    (``videos_open_to``: a restricted queue's content is its groups' and admins'): its id, its payload
    (tags, labels, reasons, file names) are that video's content. A pair is hidden when either video is.

    An event whose object has since been deleted (with its video) can no longer be checked against its
    video: it is read only by those who see every video (``videos_all_open_to``, the admins), like every
    event that cannot be narrowed to a video; the rows carry ``object_deleted`` for the log to say so.

    Those who see every video read every event, with no extra query. Otherwise one ``NOT IN`` per kind of
    object, over the (few) rows of hidden videos, which PostgreSQL hashes once."""
    qs = audit_events_with_object_state(qs=AuditEvent.objects.all() if qs is None else qs)
    if videos_all_open_to(user=user):
        return qs
    hidden = Q(object_deleted=True)
    for object_type, (model, fields) in _AUDIT_OBJECT_VIDEOS.items():
        hidden_here = Q()
        for field in fields:
            hidden_here |= ~video_open_to_q(user=user, field=field)
        rows = model._default_manager.filter(hidden_here).order_by()
        ids = rows.annotate(id_text=Cast("pk", output_field=CharField())).values("id_text")
        hidden |= Q(object_type=object_type, object_id__in=ids)
    return qs.exclude(hidden)


# Where a restricted queue's slug would be told to one outside its groups: the audit log's payloads
# (``audit_payload_shown_to``) and a platform's ``review.completed`` webhook (``review_submit``).
RESTRICTED_QUEUE_SHOWN = "(a restricted queue)"


def audit_queue_slugs_hidden_from(*, user: Any) -> frozenset[str]:
    """The slugs of the restricted review queues ``user`` may not see (``review_queue_named_for``'s rule), which the
    audit log's payloads do not show them: an escalation's ``to_queue``, a claim's or verdict's ``queue`` in a
    restricted senior queue, a routing's ``queues``. None for those who may list every queue in the admin (the
    admin role's ``view_reviewqueue``, superusers): the queue list names them all there anyway."""
    if user.has_perm("moderation.view_reviewqueue"):
        return frozenset()
    restricted = ReviewQueue.objects.filter(allowed_groups__isnull=False)
    visible = _review_queues_visible(ReviewQueue.objects.all(), user=user).values("pk")
    return frozenset(restricted.exclude(pk__in=visible).values_list("slug", flat=True).distinct())


def audit_payload_shown_to(payload: Any, *, hidden: frozenset[str]) -> Any:
    """``payload`` with every ``hidden`` queue slug, as a value or a word in a text (a reroute's "queue <slug>
    edited"), read as :data:`RESTRICTED_QUEUE_SHOWN`; the log itself is append-only and keeps them."""
    if not hidden:
        return payload
    words = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(slug) for slug in sorted(hidden)) + r")(?![\w-])")

    def shown(value: Any) -> Any:
        if isinstance(value, str):
            return words.sub(RESTRICTED_QUEUE_SHOWN, value)
        if isinstance(value, list):
            return [shown(v) for v in value]
        if isinstance(value, dict):
            return {k: shown(v) for k, v in value.items()}
        return value

    return shown(payload)


audit_object_videos_register(model=Video, video_fields=("pk",))
audit_object_videos_register(model=Decision, video_fields=("video_id",))
audit_object_videos_register(model=ReviewTask, video_fields=("decision__video_id",))


def video_review_items(*, video: Video) -> QuerySet[ReviewTask]:
    """The items that decide ``video``'s verdict: non-gold items of moderation queues. Its Content tags item is
    other work (tags, not a verdict): pending, it neither holds the verdict back from being final nor hides the
    review (the video page's Outcome, the platform's ``/api/videos/<id>/verdict/``)."""
    return ReviewTask.objects.filter(decision__video=video, is_gold=False).exclude(queue__kind=ReviewQueue.Kind.TAGS)


def video_outcome_for(*, video: Video, user: User) -> dict[str, Any]:
    """A video's outcome as its page shows it: the latest model decision (label in the policy's words) and
    the review state. While an item is open (pending or claimed) no human verdict is shown: a second
    independent reviewer must not learn it (as ``_left_the_queue`` names neither verdict nor reviewer).
    The link to the item only for the one who may open it: its claimant, in a queue they may work."""
    decision = (
        Decision.objects.filter(video=video)
        .select_related("policy_version__policy", "model_version")
        .order_by("-created_at", "-pk")
        .first()
    )
    model = relabelled = None
    if decision is not None:
        names = decision.policy_version.label_names()
        label = decision.label or decision.policy_version.safe_label
        model = {"decision": decision, "label": label, "label_name": names.get(label, "")}
        # A labeler's accepted correction relabelling it, as the review screen says it: the video's page showed
        # the model's label alone (walk hwalk22).
        if (correction := review_decision_relabelled(decision=decision)) is not None:
            relabelled = {"correction": correction, "label_name": names.get(correction.label, "")}
    tasks = video_review_items(video=video).select_related("queue", "claimed_by")
    # Each open item's queue named only to who may see it (``review_queue_named_for``): an item escalated to a senior
    # queue restricted to groups the viewer is not of waits there, on the page of a video they still see.
    visible = ExpressionWrapper(_review_queue_visible_q(user=user, field="queue_id"), output_field=BooleanField())
    open_tasks = [
        {
            "task": task,
            "queue_named": review_queue_named_for(
                user=user, queue=task.queue, hidden="a queue not open to you", visible=task.queue_visible
            ),
            "mine": task.status == ReviewTask.Status.CLAIMED and task.claimed_by_id == user.pk,
            "may_open": task.status == ReviewTask.Status.CLAIMED
            and task.claimed_by_id == user.pk
            and review_queue_may_work(user=user, queue=task.queue),
        }
        for task in tasks.filter(status__in=[ReviewTask.Status.PENDING, ReviewTask.Status.CLAIMED])
        .annotate(queue_visible=visible)
        .order_by("created_at", "pk")
    ]
    review = final = None
    if not open_tasks:
        review = (
            Review.objects.filter(decision__video=video, task__is_gold=False)
            .select_related("reviewer", "task__queue", "decision__policy_version")
            .order_by("-created_at", "-pk")
            .first()
        )
        # The label that stands, by the one precedence rule (moderation.labels.selectors.LABEL_PRECEDENCE).
        final = item_label_standing(video_id=video.pk)
    return {
        "model": model,
        "relabelled": relabelled,
        # Ready, no decision, and no worker consumes the infer queue (a CPU host with the infer worker scaled to 0,
        # its GPU node down): the model's task waits in Redis, and the page says why nothing is decided.
        "no_infer_worker": model is None and video.status == Video.Status.READY and not _worker_seen_for(queue="infer"),
        "open_tasks": open_tasks,
        "review": review,
        # The reviewer's label in the policy's words, shown with their severity (an adjudicator weighs both).
        "review_label_name": review.decision.policy_version.label_names().get(review.label, "") if review else "",
        "final": final,
        "ever_queued": bool(open_tasks) or tasks.exists(),
        # Workbench users are told who reviewed (the API's ``added_by``); platforms never are.
        "show_names": user.has_perm(Perm.REVIEW_VIDEO),
    }


def review_worked_before(*, task: ReviewTask, user: User) -> ReviewTask | None:
    """``user``'s earlier work on ``task``'s item in another queue of the same kind, escalated or decided, or
    ``None``: four eyes, so the claim never serves them this copy (``NOT_WORKED_BEFORE_SQL``) and its screen
    says why. Tags given in a tags queue are not a verdict: they never keep a moderation item from their tagger."""
    earlier = ReviewTask.objects.filter(
        decision_id=task.decision_id,
        claimed_by=user,
        status__in=(ReviewTask.Status.DONE, ReviewTask.Status.ESCALATED),
        is_gold=False,
        queue__kind__in=ReviewQueue.objects.filter(pk=task.queue_id).values("kind"),
    )
    return earlier.exclude(pk=task.pk).select_related("queue").order_by("-completed_at", "-pk").first()


def review_worked_before_text(*, earlier: ReviewTask) -> str:
    """Why an item ``earlier`` worked by the reader is not theirs to take in another queue."""
    done = "escalated" if earlier.status == ReviewTask.Status.ESCALATED else "reviewed"
    return f"You {done} this item in “{earlier.queue.name}”: another reviewer must decide it here (four eyes)."


def review_decided_by_you_text(*, task: ReviewTask, user: User) -> str | None:
    """Why a verdict on an item ``user`` already decided was not recorded, naming what was: the item decided in
    another tab or window read "Already reviewed … Your claim on this item is lost", as if someone else had taken
    it. None when the item has no verdict of ``user``'s (another reviewer's verdict is never named here)."""
    review = Review.objects.filter(task_id=task.pk, reviewer_id=user.pk).first()
    if review is None:
        return None
    severity = f", severity {review.severity}" if review.severity and review.severity != "none" else ""
    when = timezone.localtime(review.created_at)
    return (
        f"You already decided this item at {when:%H:%M} (in another tab or window?): "
        f"{review.get_verdict_display().lower()} ({review.label}{severity}). Nothing more was recorded."
    )


# The policy page's history: what the audit log says was done to its versions, newest first.
POLICY_HISTORY_ACTIONS = ("policy.draft_save", "policy.publish", "policy.activate")
POLICY_HISTORY_SHOWN = 50


def audit_events_for_policy(*, policy_id: int, limit: int = POLICY_HISTORY_SHOWN) -> list[AuditEvent]:
    """The latest ``limit`` draft saves, publishes and re-activations of ``policy_id``'s versions (one query on the
    log's object index). A policy is no video's content: every reader of the policy page may read them."""
    version_ids = PolicyVersion.objects.filter(policy_id=policy_id).annotate(
        id_text=Cast("pk", output_field=CharField())
    )
    return list(
        AuditEvent.objects.filter(
            object_type="policyversion",
            object_id__in=version_ids.values("id_text"),
            action__in=POLICY_HISTORY_ACTIONS,
        ).order_by("-at", "-pk")[:limit]
    )
