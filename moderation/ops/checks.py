"""The routing panel's two checks that read the whole library, made on the videos that changed only.

The videos with a decision no moderation queue holds nor awaits and those with a pending item in a queue for
another policy (``routing_orphans``' ``unrouted`` and ``other_policy``), and the half-decided videos
(``videos_missing_auto_decision``: every settled video against the decisions under each auto-applied policy), are
anti-joins over every decision, item and video: ~300 ms of each load of ``/ops/`` at 100,000 videos, which
session hops20 kept for a minute (a cold load still paid them, and a kept one could be a minute stale). Now the
database lists the videos that could have become inconsistent (``RoutingRecheck``, filled by triggers in the
writing statement's own transaction), and each load checks those only: the few inconsistent videos and whatever
changed since the last prune. The figures are exact at each load, whoever changed what. The load itself writes
nothing; the beat (``prune_routing_rechecks``, every 5 min) and "Check now" (a POST) delete the rows of videos that
are consistent now (``routing_recheck_prune``).

A row is deleted only by a check that saw the change that wrote it (the row is visible to the check's statement),
so a change committed after the check keeps its own row, and concurrent checks skip each other's rows. "Check now"
(``routing_recheck_whole_library``) reads the whole library once and adds any inconsistent video the list lacks
(none, unless a writer went round the triggers: it is logged).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from moderation.inference.selectors import (
    MissingDecisionSummary,
    auto_applied_policy_ids,
    missing_decision_summary,
    videos_missing_auto_decision,
)
from moderation.review.models import RoutingRecheck
from moderation.review.selectors import RoutingOrphanSummary, routing_orphans, routing_orphans_summary

logger = logging.getLogger(__name__)

SHOWN = 10  # the first ids of each kind the panel lists (``ops_routing``'s ``shown``)


@dataclass(frozen=True)
class RoutingChecks:
    """What the routing panel says of the inconsistently routed videos (``orphans``) and of the half-decided ones
    (``missing``), as found at ``checked_at``."""

    orphans: RoutingOrphanSummary
    missing: MissingDecisionSummary
    checked_at: datetime


def _inconsistent(*, among: list[int] | None, policies: list[int] | None = None) -> QuerySet[Any]:
    """The ids of the videos either check finds among ``among`` (None: the whole library), as one UNION of the
    kinds' own reads (the ``awaited_made`` kind is read live from its few rows, not here)."""
    kinds = routing_orphans(among=among)
    half_decided = videos_missing_auto_decision(among=among, policies=policies).order_by().values("pk")
    return kinds["unrouted"].order_by().union(kinds["other_policy"].order_by(), half_decided)


# Past this many listed videos a load checks the whole library instead: the checks' cost grows with the ids passed.
# With every video listed (a policy made auto-applied lists each decided video lacking it; a bulk import each video
# it decides, until the beat's prune) the listed checks took 1,641 ms of SQL a load at 100,000 videos against 601 ms
# for the whole-library anti-joins; with 20 to 440 listed, 48 ms (bench/RESULTS.md, hops22): the two meet near
# 35,000 listed there, so past 20,000 the whole library is read. The figures are the same (every inconsistent video
# is listed), and the list is read only as far as the bound.
LISTED_MOST = 20_000


def _listed(*, most: int | None = None) -> list[int]:
    rows = RoutingRecheck.objects.order_by().values_list("video_id", flat=True).distinct()
    return list(rows if most is None else rows[: most + 1])


def routing_recheck_prune(*, listed: list[int] | None = None, policies: list[int] | None = None) -> set[int]:
    """Delete the ``RoutingRecheck`` rows of the listed videos (``listed``: read already) that are consistent now;
    the rows of the inconsistent ones stay. One statement: the rows it deletes are those its own snapshot shows,
    each written by a change the same snapshot's check sees; rows another check holds are skipped, not waited for.
    ``policies``: the auto-applied ones, read already. Returns the videos whose rows it deleted."""
    listed = _listed() if listed is None else listed
    if not listed:
        return set()
    sql, params = _inconsistent(among=listed, policies=policies).query.sql_with_params()
    table = RoutingRecheck._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE id IN ("  # noqa: S608  (our table name and our queryset's SQL)
            f"SELECT id FROM {table} WHERE video_id = ANY(%s) AND video_id NOT IN ({sql}) FOR UPDATE SKIP LOCKED"
            ") RETURNING video_id",
            [listed, *params],
        )
        return {row[0] for row in cursor.fetchall()}


def routing_recheck_whole_library() -> int:
    """The panel's "Check now": every inconsistent video of the whole library (one read of it, as each load made
    before), added to ``RoutingRecheck`` where it lacks one. The triggers leave none to add; one added means a
    writer went round them (logged). Returns how many were added."""
    table = RoutingRecheck._meta.db_table
    sql, params = _inconsistent(among=None).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (video_id) SELECT found.id FROM ({sql}) found (id) "  # noqa: S608  (as above)
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} listed WHERE listed.video_id = found.id)",
            params,
        )
        added = int(cursor.rowcount)
    if added:
        logger.warning("Routing check of the whole library: %d inconsistent videos were not listed to check", added)
    return added


def ops_routing_checks(*, now: datetime, shown: int, dismissed: bool) -> RoutingChecks:
    """The routing panel's checks (``routing_orphans_summary``, ``missing_decision_summary``) on the videos listed
    in ``RoutingRecheck``: exact figures, as of the list's read, that read the changed videos, not the library. A
    load writes nothing (a GET changes nothing: ``tests/hardening/test_get_writes_nothing.py``); the beat drops the
    rows of videos found consistent (``routing_recheck_prune``, every 5 min), so the list holds minutes of changes
    and the inconsistent videos. No video listed: no statement but the list's and the live ``awaited_made`` kind's.
    More than ``LISTED_MOST`` listed: the whole library is checked (cheaper then), and only that many ids are read."""
    listed = _listed(most=LISTED_MOST)
    among: list[int] | None = listed if len(listed) <= LISTED_MOST else None
    policies = auto_applied_policy_ids() if among is None or among else []
    return RoutingChecks(
        orphans=routing_orphans_summary(first=shown, among=among),
        missing=missing_decision_summary(now=now, first=shown, dismissed=dismissed, among=among, policies=policies),
        checked_at=now,
    )
