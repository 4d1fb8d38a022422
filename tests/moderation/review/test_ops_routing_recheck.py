"""The ops page's routing figures are exact at each load and read only the videos that changed
(``moderation.ops.checks``, ``RoutingRecheck`` filled by triggers of migration 0071).

The inconsistently routed videos with no item nor awaited row, those with a pending item in a queue for another
policy, and the half-decided videos were anti-joins over the whole library on every cold load (~300 ms at 100,000
videos, ``bench/daily_pages.py``), kept for a minute between (so a minute stale). Here each kind of write that can
make a video inconsistent is made, by services, the ORM's bulk paths and raw SQL, and after each the page's figures
equal the whole-library queries (kept in the test as the oracle); a load writes nothing, the beat's prune leaves
listed only the inconsistent videos, and a claim lists nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from moderation.inference.selectors import videos_missing_auto_decision_counted
from moderation.media.models import Video
from moderation.models import Decision
from moderation.ops.checks import routing_recheck_prune
from moderation.ops.selectors import ops_routing
from moderation.policies.models import Policy
from moderation.review.models import AwaitedQueueItem, ReviewQueue, ReviewTask, RoutingRecheck
from moderation.review.selectors import routing_orphan_counts
from moderation.review.services import review_claim_next, review_queue_default, review_release
from tests.factories import DecisionFactory, PolicyVersionFactory, ReviewTaskFactory, UserFactory, VideoFactory

ORPHAN_KINDS = " + 0)"  # the inconsistently routed kinds sort their few ids by ``id + 0``
HALF_DECIDED = "IN ('uploaded', 'processing')"  # only the half-decided check names the media pipeline's statuses


def _page() -> dict[str, Any]:
    routing = ops_routing(now=timezone.now())
    return {
        "unrouted": routing["orphans"]["unrouted"].n,
        "other_policy": routing["orphans"]["other_policy"].n,
        "awaited_made": routing["orphans"]["awaited_made"].n,
        "missing": routing["missing"],
    }


def _whole_library() -> dict[str, Any]:
    """The oracle: the same figures read from every video, as each load did before."""
    return {**routing_orphan_counts(), "missing": videos_missing_auto_decision_counted().count()}


def _assert_exact(expected: dict[str, int] | None = None) -> dict[str, Any]:
    page = _page()
    assert page == _whole_library()
    if expected is not None:
        assert {k: page[k] for k in expected} == expected
    return page


@pytest.mark.django_db
def test_after_each_kind_of_write_the_page_shows_the_whole_library_s_figures_at_once(policy_version: Any) -> None:
    queue = review_queue_default()
    _assert_exact({"unrouted": 0, "missing": 0})

    # A decision routed nowhere (no item, no awaited row); then its item; the item made gold; put back.
    decision = DecisionFactory(policy_version=policy_version)
    _assert_exact({"unrouted": 1})
    item = ReviewTaskFactory(decision=decision, queue=queue)
    _assert_exact({"unrouted": 0})
    ReviewTask.objects.filter(pk=item.pk).update(is_gold=True)
    _assert_exact({"unrouted": 1})
    ReviewTask.objects.filter(pk=item.pk).update(is_gold=False)
    _assert_exact({"unrouted": 0})

    # Its item deleted (a raw statement: no ORM collector); an awaited row instead, then that deleted.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM moderation_reviewtask WHERE id = %s", [item.pk])
    _assert_exact({"unrouted": 1})
    own = ReviewQueue.objects.create(slug="own", name="Own model", policy=policy_version.policy)
    awaited = AwaitedQueueItem.objects.create(decision=decision, queue=own)
    _assert_exact({"unrouted": 0})
    awaited.delete()
    _assert_exact({"unrouted": 1})

    # Items moved, in one statement, into a tags queue (no moderation item left), and back.
    item = ReviewTaskFactory(decision=decision, queue=queue)
    tags = ReviewQueue.objects.create(slug="tags-q", name="Tags", kind=ReviewQueue.Kind.TAGS)
    ReviewTask.objects.filter(pk=item.pk).update(queue=tags)
    _assert_exact({"unrouted": 1})
    ReviewTask.objects.filter(pk=item.pk).update(queue=queue)
    _assert_exact({"unrouted": 0})
    # The queue itself changed kind, then back.
    ReviewQueue.objects.filter(pk=queue.pk).update(kind=ReviewQueue.Kind.TAGS)
    _assert_exact({"unrouted": 1})
    ReviewQueue.objects.filter(pk=queue.pk).update(kind=ReviewQueue.Kind.MODERATION)
    _assert_exact({"unrouted": 0})

    # The queue now takes another policy's decisions: its pending item is misplaced; claimed, it is not; put back
    # (released), it is again.
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=False)
    queue.policy = minors
    queue.save()
    _assert_exact({"other_policy": 1})
    reviewer = UserFactory(role="moderator")
    claimed = review_claim_next(user=reviewer, queue=queue)
    assert claimed is not None
    _assert_exact({"other_policy": 0})
    review_release(task=claimed, user=reviewer)
    _assert_exact({"other_policy": 1})
    queue.policy = policy_version.policy
    queue.save()
    _assert_exact({"other_policy": 0, "unrouted": 0, "missing": 0})


@pytest.mark.django_db
def test_a_policy_made_auto_applied_or_a_video_leaving_the_pipeline_shows_its_half_decided_videos_at_once(
    policy_version: Any,
) -> None:
    queue = review_queue_default()
    decided = [DecisionFactory(policy_version=policy_version) for _ in range(3)]
    ReviewTask.objects.bulk_create(ReviewTask(decision=d, queue=queue) for d in decided)
    in_pipeline = DecisionFactory(policy_version=policy_version, video=VideoFactory(status=Video.Status.PROCESSING))
    ReviewTaskFactory(decision=in_pipeline, queue=queue)
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=False)
    PolicyVersionFactory(policy=minors)
    _assert_exact({"missing": 0})

    Policy.objects.filter(pk=minors.pk).update(auto_apply=True)
    _assert_exact({"missing": 3})
    Video.objects.filter(pk=in_pipeline.video_id).update(status=Video.Status.READY)
    _assert_exact({"missing": 4})
    # One gets its missing decision (bulk_create); another loses its only decision under the first policy.
    minors_version = minors.versions.get()
    Decision.objects.bulk_create(
        [Decision(video_id=decided[0].video_id, policy_version=minors_version, model_version=decided[0].model_version)]
    )
    _assert_exact({"missing": 3})

    # A new policy with an active version, auto-applied from its creation: every decided video lacks it.
    PolicyVersionFactory(policy=Policy.objects.create(slug="spam", name="Spam", auto_apply=True))
    _assert_exact({"missing": 4})
    # A video's only decision deleted (its item with it, through the ORM's collector): no longer decided, so not
    # half-decided either. (The missing decision made above has no item: unrouted.)
    Decision.objects.filter(pk=decided[1].pk).delete()
    _assert_exact({"missing": 3, "unrouted": 1})


@pytest.mark.django_db
def test_a_prune_keeps_listed_only_the_inconsistent_videos_and_a_load_reads_only_the_listed(
    policy_version: Any,
) -> None:
    queue = review_queue_default()
    routed = [DecisionFactory(policy_version=policy_version) for _ in range(5)]
    ReviewTask.objects.bulk_create(ReviewTask(decision=d, queue=queue) for d in routed)
    unrouted = DecisionFactory(policy_version=policy_version)
    assert set(RoutingRecheck.objects.values_list("video_id", flat=True)) == {d.video_id for d in [*routed, unrouted]}

    with CaptureQueriesContext(connection) as ctx:
        page = _page()
    assert page["unrouted"] == 1
    # A load writes nothing (a GET changes nothing): every listed video stays listed until the beat's prune.
    assert not [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().startswith(("DELETE", "INSERT", "UPDATE"))]
    assert RoutingRecheck.objects.values("video_id").distinct().count() == 6
    # Each check reads the listed videos, never the whole library (but the awaited rows' kind: a few rows, live).
    checks = [q["sql"] for q in ctx.captured_queries if ORPHAN_KINDS in q["sql"] or HALF_DECIDED in q["sql"]]
    checks = [sql for sql in checks if not re.search(r'FROM "moderation_awaitedqueueitem"(?! U\d)', sql)]
    assert len(checks) == 3  # unrouted, other_policy; the half-decided
    assert all("unnest(" in sql for sql in checks)  # each restricted to the listed videos' ids
    assert routing_recheck_prune() == {d.video_id for d in routed}
    assert list(RoutingRecheck.objects.values_list("video_id", flat=True)) == [unrouted.video_id]
    assert _page()["unrouted"] == 1

    # A claim and a decision change nothing a check looks at: nothing is listed for them.
    reviewer = UserFactory(role="moderator")
    claimed = review_claim_next(user=reviewer, queue=queue)
    assert claimed is not None
    ReviewTask.objects.filter(pk=claimed.pk).update(status=ReviewTask.Status.DONE, completed_at=timezone.now())
    assert list(RoutingRecheck.objects.values_list("video_id", flat=True)) == [unrouted.video_id]

    # Nothing inconsistent listed (the usual state): no check runs, but the awaited rows' live kind.
    ReviewTask.objects.create(decision=unrouted, queue=queue)
    routing_recheck_prune()
    assert not RoutingRecheck.objects.exists()
    with CaptureQueriesContext(connection) as ctx:
        assert _page()["unrouted"] == 0
    checks = [q["sql"] for q in ctx.captured_queries if ORPHAN_KINDS in q["sql"] or HALF_DECIDED in q["sql"]]
    assert len(checks) == 1 and re.search(r'FROM "moderation_awaitedqueueitem"(?! U\d)', checks[0])


@pytest.mark.django_db
def test_check_now_finds_what_a_writer_round_the_triggers_left_and_lists_it(
    policy_version: Any, client_as: Any, caplog: Any
) -> None:
    review_queue_default()
    client = client_as("admin")
    decision = DecisionFactory(policy_version=policy_version)
    RoutingRecheck.objects.all().delete()  # as a writer with the triggers disabled would leave it
    assert _page()["unrouted"] == 0

    page = client.get("/ops/").content.decode()
    assert "exact as of this load" in page and 'action="/ops/routing-recheck/"' in page and "Check now</button>" in page
    # A GET of the old link or of the form's address writes nothing (the address sends it to the page).
    client.get("/ops/?recheck=1")
    assert client.get("/ops/routing-recheck/").status_code == 303
    assert not RoutingRecheck.objects.exists()
    with caplog.at_level(logging.WARNING, logger="moderation.ops.checks"):
        response = client.post("/ops/routing-recheck/", follow=True)
    assert response.redirect_chain[-1][0] == "/ops/#ops-routing"
    assert "1 inconsistent videos were not listed" in caplog.text
    assert "1 inconsistently routed or half-decided video was not listed" in response.content.decode()
    assert list(RoutingRecheck.objects.values_list("video_id", flat=True)) == [decision.video_id]
    assert _page()["unrouted"] == 1
    # Listed once: a second "Check now" adds nothing, and says the figures were already complete.
    response = client.post("/ops/routing-recheck/", follow=True)
    assert "already counted every inconsistent video" in response.content.decode()
    assert RoutingRecheck.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_change_committed_after_a_check_began_is_not_dropped_by_it(policy_version: Any) -> None:
    """A check deletes the rows its snapshot shows of videos consistent in that snapshot: a change not yet
    committed (its own row not visible) keeps its row, and the next load counts it."""
    queue = review_queue_default()
    decision = DecisionFactory(policy_version=policy_version)
    item = ReviewTaskFactory(decision=decision, queue=queue)
    started, checked = threading.Event(), threading.Event()

    def delete_its_item() -> None:
        try:
            with transaction.atomic():
                ReviewTask.objects.filter(pk=item.pk).delete()
                started.set()
                assert checked.wait(timeout=30)
        finally:
            connections.close_all()

    writer = threading.Thread(target=delete_its_item)
    writer.start()
    assert started.wait(timeout=30)
    routing_recheck_prune()  # the beat's, while the delete is not committed: the video is routed, its older row dropped
    assert _page()["unrouted"] == 0
    checked.set()
    writer.join(timeout=30)

    _assert_exact({"unrouted": 1})


@pytest.mark.django_db
def test_beat_drops_the_consistent_videos_rows_so_a_quiet_week_does_not_pile_up(policy_version: Any) -> None:
    from celery import Celery

    from moderation.ops.tasks import prune_routing_rechecks
    from workbench.queues import TASK_ROUTES, TaskQueue, configure_routing

    queue = review_queue_default()
    routed = [DecisionFactory(policy_version=policy_version) for _ in range(3)]
    ReviewTask.objects.bulk_create(ReviewTask(decision=d, queue=queue) for d in routed)
    unrouted = DecisionFactory(policy_version=policy_version)

    assert prune_routing_rechecks.run() == 3  # videos (each listed twice: its decision made, its pending item)
    assert list(RoutingRecheck.objects.values_list("video_id", flat=True)) == [unrouted.video_id]
    assert prune_routing_rechecks.run() == 0
    assert _page()["unrouted"] == 1
    name = "moderation.ops.tasks.prune_routing_rechecks"
    app = Celery("routing-check", set_as_current=False)  # never the app shared tasks send through
    configure_routing(app)
    assert [e["schedule"] for e in app.conf.beat_schedule.values() if e["task"] == name] == [300.0]
    assert TASK_ROUTES[name] is TaskQueue.DEFAULT


@pytest.mark.django_db
def test_a_load_with_more_videos_listed_than_its_bound_checks_the_whole_library(
    policy_version: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every video listed (a policy made auto-applied, a bulk import before the beat's prune) passing each id to
    the checks cost 2.7 times the whole-library checks at 100,000 videos: past ``LISTED_MOST`` a load reads the list
    only as far as its bound and checks the whole library, with the same figures."""
    from moderation.ops import checks

    monkeypatch.setattr(checks, "LISTED_MOST", 3)
    queue = review_queue_default()
    routed = [DecisionFactory(policy_version=policy_version) for _ in range(3)]
    ReviewTask.objects.bulk_create(ReviewTask(decision=d, queue=queue) for d in routed)
    DecisionFactory(policy_version=policy_version)  # unrouted
    assert RoutingRecheck.objects.values("video_id").distinct().count() == 4

    with CaptureQueriesContext(connection) as ctx:
        page = _assert_exact({"unrouted": 1})
    reads = [q["sql"] for q in ctx.captured_queries if '"moderation_routingrecheck"' in q["sql"]]
    assert reads and all("LIMIT 4" in sql for sql in reads[:1])  # the list read as far as the bound
    checks_sql = [q["sql"] for q in ctx.captured_queries if ORPHAN_KINDS in q["sql"] or HALF_DECIDED in q["sql"]]
    assert len(checks_sql) >= 3 and not [sql for sql in checks_sql if "unnest(" in sql]  # the whole library
    monkeypatch.setattr(checks, "LISTED_MOST", 4)
    assert _page() == page  # listed ids again: the same figures
