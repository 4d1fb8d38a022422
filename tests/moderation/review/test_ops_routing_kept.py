"""The ops page's routing panel reuses its two whole-library checks for a short while, says when they were made, and
makes them again after each of its actions (``moderation.ops.checks``).

The videos with a decision no queue holds nor awaits and the half-decided videos were found on every load of
``/ops/`` and of its routing panel: anti-joins over every decision, review item and settled video, 250 and 90-250 ms
at 100,000 videos (``bench/daily_pages.py``). Now a load within ``OPS_ROUTING_CHECK_MAX_AGE_SECONDS`` of the last
check reads neither; the page says how old its figures are and offers "Check now"; the Repair routing button, a
retry or a dismiss (and ``manage.py repair_routing``) drop the kept figures in every process.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from moderation.inference.models import MissingDecisionRepair
from moderation.inference.services import missing_decision_failure_record
from moderation.ops.selectors import ops_routing
from moderation.ops.services import ops_missing_decision_dismiss, ops_routing_repair
from moderation.policies.models import Policy
from tests.factories import DecisionFactory, PolicyVersionFactory, UserFactory

pytestmark = pytest.mark.django_db

HALF_DECIDED = "IN ('uploaded', 'processing')"  # only the half-decided check names the media pipeline's statuses
ORPHAN_KINDS = " + 0)"  # the inconsistently routed kinds sort their few ids by ``id + 0``


def _whole_library_reads(run: Any) -> tuple[Any, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        result = run()
    return result, [q["sql"] for q in ctx.captured_queries if HALF_DECIDED in q["sql"] or ORPHAN_KINDS in q["sql"]]


@pytest.fixture
def kept(settings: Any, policy_version: Any) -> Any:
    """Checks reused for a minute; a second auto-applied policy; one decision routed nowhere, under the first only
    (unrouted, and half-decided)."""
    settings.OPS_ROUTING_CHECK_MAX_AGE_SECONDS = 60
    PolicyVersionFactory(policy=Policy.objects.create(slug="minors", name="Minors", auto_apply=True))
    return DecisionFactory(policy_version=policy_version)


def test_a_load_within_the_max_age_reads_neither_whole_library_check_and_says_the_same(
    kept: Any, policy_version: Any
) -> None:
    now = timezone.now()
    first, reads = _whole_library_reads(lambda: ops_routing(now=now))
    assert (first["orphaned"], first["orphans"]["unrouted"].n, first["missing"]) == (1, 1, 1)
    assert len(reads) == 4  # the half-decided set, the orphans' three kinds
    assert first["checked_at"] == now and first["checked_ago"] == "just now"

    DecisionFactory(policy_version=policy_version)  # one more of each, by a path that is no action of the page
    later = now + timedelta(seconds=59)
    second, reads = _whole_library_reads(lambda: ops_routing(now=later))
    assert reads == []
    assert (second["orphaned"], second["missing"], second["checked_at"]) == (1, 1, now)
    # The live parts are live: the stranded check reads its few candidates on every load.
    assert second["stranded"] == 0

    aged, reads = _whole_library_reads(lambda: ops_routing(now=now + timedelta(seconds=61)))
    assert len(reads) == 4 and (aged["orphaned"], aged["missing"]) == (2, 2)


def test_the_repair_drops_the_kept_checks_so_the_panel_shows_what_it_left(
    kept: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from moderation.review.services import review_queue_default

    review_queue_default()
    before = ops_routing(now=timezone.now())
    assert (before["orphaned"], before["missing_to_queue"], before["missing_queued"]) == (1, 1, 0)

    with django_capture_on_commit_callbacks(execute=True):
        ops_routing_repair()

    after = ops_routing(now=timezone.now())
    # Routed into the default queue, its missing decision queued: kept, the panel said 1 and "1 not queued yet".
    assert (after["orphaned"], after["missing_to_queue"], after["missing_queued"]) == (0, 0, 1)


def test_a_dismiss_drops_the_kept_checks(kept: Any, django_capture_on_commit_callbacks: Any) -> None:
    for _ in range(MissingDecisionRepair.MAX_ATTEMPTS):
        missing_decision_failure_record(video_id=kept.video_id, error="CUDA out of memory")
    assert ops_routing(now=timezone.now())["missing_given_up"] == 1

    with django_capture_on_commit_callbacks(execute=True):
        ops_missing_decision_dismiss(video_id=kept.video_id, by=UserFactory())

    routing = ops_routing(now=timezone.now())
    assert (routing["missing_given_up"], routing["missing_dismissed"], routing["missing"]) == (0, 1, 0)


def test_an_action_in_another_process_drops_this_process_s_kept_checks(kept: Any, policy_version: Any) -> None:
    """Each process keeps its own; the token in Redis, replaced by an action anywhere, tells them all."""
    ops_routing(now=timezone.now())
    DecisionFactory(policy_version=policy_version)
    caches["shared"].set("ops:routing-checks-gen", "replaced by another process", timeout=None)

    routing, reads = _whole_library_reads(lambda: ops_routing(now=timezone.now()))

    assert len(reads) == 4 and routing["orphaned"] == 2


def test_the_page_says_when_it_checked_and_check_now_checks_again(kept: Any, client_as: Any) -> None:
    client = client_as("admin")
    page = client.get("/ops/").content.decode()
    assert "The inconsistently routed and half-decided videos were checked just now" in page
    assert "reused for up to 60 s" in page and 'href="/ops/?recheck=1">Check now</a>' in page

    _, reads = _whole_library_reads(lambda: client.get("/ops/"))
    assert reads == []
    response, reads = _whole_library_reads(lambda: client.get("/ops/?recheck=1"))
    assert response.status_code == 200 and len(reads) == 4


def test_with_no_max_age_the_checks_are_made_on_every_load_and_the_page_says_nothing_of_it(
    kept: Any, settings: Any, client_as: Any
) -> None:
    settings.OPS_ROUTING_CHECK_MAX_AGE_SECONDS = 0
    client = client_as("admin")
    client.get("/ops/")
    response, reads = _whole_library_reads(lambda: client.get("/ops/"))
    assert len(reads) == 4 and "were checked" not in response.content.decode()
