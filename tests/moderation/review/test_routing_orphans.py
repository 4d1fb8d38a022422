"""Routing older code left inconsistent is found by the ops page and ``repair_routing``, mended, and left alone after.

Every decision is routed: its (video, policy version) gets an item in a moderation queue or an awaited row
(``AwaitedQueueItem``) for a queue naming its own model; the video's restricted flag says whether a restricted
queue awaits one; an open item sits in a queue that takes its decision's policy. Rows written before the awaited
table existed (0041 rebuilt it from routing's audit events), or by paths that bypassed the services, break these
in ways the stranded-video check did not see. Each state is built here with raw ORM writes, as such code left it:

- a decision no queue holds nor awaits (its awaited row went with a queue deleted outside the admin's delete);
- a flagged video with no awaited row and no item (found before too: the stranded check);
- a pending item in a queue whose policy changed since (a claimed one stays: someone is working on it);
- an awaited row whose queue holds the item already, or takes another policy's decisions now;
- a review item pointing to a deleted queue: impossible, the database refuses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse

from moderation.inference.services import decision_create_for_video, model_version_register
from moderation.media.models import Video
from moderation.media.selectors import video_open_to
from moderation.models import Decision
from moderation.policies.models import Policy
from moderation.review.models import AuditEvent, AwaitedQueueItem, ReviewQueue, ReviewTask
from moderation.review.selectors import routing_orphan_counts, videos_routing_orphaned, videos_routing_stranded
from moderation.review.services import review_queue_decision
from tests.factories import PolicyVersionFactory, UserFactory, VideoFactory

pytestmark = pytest.mark.django_db


def _staff(*roles: str) -> User:
    user = UserFactory()
    user.groups.add(*Group.objects.filter(name__in=roles))
    return user


@dataclass
class Legacy:
    unrouted: Video  # its awaited row was deleted with its queue: no item, nothing awaited, open
    flagged: Video  # restricted flag, no awaited row, no item
    other_policy: Video  # a pending item in a queue that takes another policy's decisions now
    claimed_other_policy: Video  # the same, but a reviewer holds the item
    awaited_made: Video  # an awaited row whose queue holds the item already
    awaited_other_policy: Video  # an awaited row whose queue takes another policy now (its task lost)
    fine: Video  # routed as the services route: never touched
    general: ReviewQueue
    seniors: ReviewQueue
    reviewer: User
    outsider: User


@pytest.fixture
def legacy(policy_version: Any) -> Legacy:
    seniors_group = Group.objects.create(name="seniors")
    own = model_version_register(name="seniors-model", backend="evidence_baseline")
    seniors = ReviewQueue.objects.create(
        slug="seniors", name="Seniors", policy=policy_version.policy, model_version=own
    )
    seniors.allowed_groups.add(seniors_group)
    minors = Policy.objects.create(slug="minors", name="Minors", auto_apply=False)
    PolicyVersionFactory(policy=minors)

    # A queue with its own model, open to all, deleted by a bulk delete (not the admin's): its awaited row goes too.
    doomed = ReviewQueue.objects.create(
        slug="second-opinion", name="Second opinion", policy=policy_version.policy, model_version=own
    )
    seniors.is_active = False
    seniors.save(update_fields=["is_active"])
    unrouted = VideoFactory(title="unrouted")
    first = decision_create_for_video(video_id=unrouted.pk)
    assert AwaitedQueueItem.objects.filter(decision=first, queue=doomed).exists()
    ReviewQueue.objects.filter(pk=doomed.pk).delete()
    seniors.is_active = True
    seniors.save(update_fields=["is_active"])

    flagged = VideoFactory(title="flagged")
    first = decision_create_for_video(video_id=flagged.pk)
    AwaitedQueueItem.objects.filter(decision=first).delete()  # its flag stays
    ReviewTask.objects.filter(decision__video=flagged).delete()

    awaited_made = VideoFactory(title="awaited made")
    first = decision_create_for_video(video_id=awaited_made.pk)
    review_queue_decision(decision_id=first.pk, queue_id=seniors.pk)
    AwaitedQueueItem.objects.create(decision=first, queue=seniors)  # as older code left it
    Video.objects.filter(pk=awaited_made.pk).update(routed_restricted=True)

    fine = VideoFactory(title="fine")
    review_queue_decision(decision_id=decision_create_for_video(video_id=fine.pk).pk, queue_id=seniors.pk)

    # Seniors out of the way: "panel" (its own model) awaits the next one's item, then takes minors' decisions.
    ReviewQueue.objects.filter(pk=seniors.pk).update(is_active=False)
    panel = ReviewQueue.objects.create(slug="panel", name="Panel", policy=policy_version.policy, model_version=own)
    awaited_other_policy = VideoFactory(title="awaited by a queue of another policy")
    decision_create_for_video(video_id=awaited_other_policy.pk)
    assert AwaitedQueueItem.objects.filter(decision__video=awaited_other_policy, queue=panel).exists()
    ReviewQueue.objects.filter(pk=panel.pk).update(policy=minors)
    # "general" takes the next ones, then its policy is changed by a bulk update.
    general = ReviewQueue.objects.create(slug="general", name="General", policy=policy_version.policy)
    other_policy = VideoFactory(title="other policy")
    decision_create_for_video(video_id=other_policy.pk)
    claimed_other_policy = VideoFactory(title="claimed, other policy")
    decision_create_for_video(video_id=claimed_other_policy.pk)
    reviewer = _staff("moderator")
    ReviewTask.objects.filter(decision__video=claimed_other_policy).update(
        status=ReviewTask.Status.CLAIMED, claimed_by=reviewer
    )
    ReviewQueue.objects.filter(pk=general.pk).update(policy=minors)
    # Seniors back, but for reported videos only: what routing chooses now for these is the default queue.
    ReviewQueue.objects.filter(pk=seniors.pk).update(is_active=True, user_reported_only=True)
    return Legacy(
        unrouted=unrouted,
        flagged=flagged,
        other_policy=other_policy,
        claimed_other_policy=claimed_other_policy,
        awaited_made=awaited_made,
        awaited_other_policy=awaited_other_policy,
        fine=fine,
        general=general,
        seniors=seniors,
        reviewer=reviewer,
        outsider=_staff("moderator"),
    )


def _state() -> dict[str, Any]:
    """Everything routing writes, to compare a run with the next."""
    return {
        "items": sorted(ReviewTask.objects.values_list("pk", "decision_id", "queue_id", "slot", "status")),
        "awaited": sorted(AwaitedQueueItem.objects.values_list("decision_id", "queue_id")),
        "flags": sorted(Video.objects.values_list("pk", "routed_restricted")),
        "decisions": Decision.objects.count(),
        "events": AuditEvent.objects.count(),
    }


def _items(video: Video) -> set[tuple[str, str]]:
    return set(ReviewTask.objects.filter(decision__video=video).values_list("queue__slug", "status"))


def test_each_inconsistent_state_is_counted_mended_and_left_alone_by_a_second_run(legacy: Legacy) -> None:
    w = legacy
    # What the repair found before: only the flagged video.
    assert set(videos_routing_stranded().values_list("pk", flat=True)) == {w.flagged.pk}
    assert set(videos_routing_orphaned().values_list("pk", flat=True)) == {
        w.unrouted.pk,
        w.flagged.pk,  # no item and nothing awaited either
        w.other_policy.pk,
        w.awaited_made.pk,
        w.awaited_other_policy.pk,
    }
    assert routing_orphan_counts() == {"unrouted": 2, "other_policy": 1, "awaited_made": 2}
    assert _items(w.unrouted) == set() and video_open_to(user=w.outsider, video_id=w.unrouted.pk)

    admin = Client()
    admin.force_login(_staff("admin"))
    html = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "5</strong> videos with routing older code left inconsistent" in html
    assert (
        "2 with a decision no queue holds nor awaits (no reviewer will see it), 1 with a pending item in a queue "
        "for another policy, 2 awaiting an item from a queue that holds it already or takes another policy now" in html
    )

    before = _state()
    out = StringIO()
    call_command("repair_routing", "--all", "--dry-run", stdout=out)
    ids = sorted([w.unrouted.pk, w.flagged.pk, w.other_policy.pk, w.awaited_made.pk, w.awaited_other_policy.pk])
    listed = ", ".join(f"#{pk}" for pk in ids)
    assert f"5 video(s) with routing older code left inconsistent would be mended: {listed}" in out.getvalue()
    assert _state() == before

    out = StringIO()
    call_command("repair_routing", "--all", stdout=out)
    assert "1 stranded video(s) routed again" in out.getvalue(), out.getvalue()
    assert "4 video(s) with routing older code left inconsistent mended" in out.getvalue(), out.getvalue()
    assert "left:" not in out.getvalue()

    # A decision no queue held: in the default queue now, for reviewers to see.
    assert _items(w.unrouted) == {(ReviewQueue.DEFAULT_SLUG, ReviewTask.Status.PENDING)}
    assert video_open_to(user=w.outsider, video_id=w.unrouted.pk)
    # The flag with nothing behind it: cleared, and the video routed as the queues say now.
    assert not Video.objects.get(pk=w.flagged.pk).routed_restricted
    assert _items(w.flagged) == {(ReviewQueue.DEFAULT_SLUG, ReviewTask.Status.PENDING)}
    assert video_open_to(user=w.outsider, video_id=w.flagged.pk)
    # The misplaced pending item: gone, the decision in the queue that takes it now; the claimed one stays.
    assert _items(w.other_policy) == {(ReviewQueue.DEFAULT_SLUG, ReviewTask.Status.PENDING)}
    assert _items(w.claimed_other_policy) == {("general", ReviewTask.Status.CLAIMED)}
    assert AuditEvent.objects.filter(action="review_task.dropped", payload__queue="general").count() == 1
    # The needless awaited row: deleted; its item stays; the video is the seniors' as before.
    assert not AwaitedQueueItem.objects.filter(decision__video=w.awaited_made).exists()
    assert _items(w.awaited_made) == {("seniors", ReviewTask.Status.PENDING)}
    assert not video_open_to(user=w.outsider, video_id=w.awaited_made.pk)
    # Awaited by a queue that takes another policy now: routed as the queues say now.
    assert not AwaitedQueueItem.objects.filter(decision__video=w.awaited_other_policy).exists()
    assert _items(w.awaited_other_policy) == {(ReviewQueue.DEFAULT_SLUG, ReviewTask.Status.PENDING)}

    assert not videos_routing_orphaned().exists() and not videos_routing_stranded().exists()
    html = admin.get(reverse("moderation:ops_dashboard")).content.decode()
    assert "older code left inconsistent" not in html

    # Idempotent: a second run finds nothing and changes nothing.
    after = _state()
    out = StringIO()
    call_command("repair_routing", "--all", stdout=out)
    assert "0 video(s) with routing older code left inconsistent mended" in out.getvalue()
    assert _state() == after


def test_a_review_item_cannot_point_to_a_deleted_queue(legacy: Legacy) -> None:
    """The state the repair need not look for: the queue's foreign key protects its items."""
    with pytest.raises(ProtectedError):
        ReviewQueue.objects.filter(pk=legacy.general.pk).delete()
    task = ReviewTask.objects.filter(queue=legacy.general).first()
    assert task is not None
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("UPDATE moderation_reviewtask SET queue_id = %s WHERE id = %s", [10**9, task.pk])


def test_the_ops_button_mends_them_and_says_so(legacy: Legacy) -> None:
    admin = Client()
    admin.force_login(_staff("admin"))
    page = admin.post(reverse("moderation:ops_routing_repair"), follow=True).content.decode()
    assert "mended the routing of 4 inconsistently routed videos (left by older code)" in page
    assert not videos_routing_orphaned().exists()
    page = admin.post(reverse("moderation:ops_routing_repair"), follow=True).content.decode()
    assert "Nothing to repair" in page


def _routing_health_statements(sql: list[str]) -> dict[str, int]:
    """Of the statements run, how many read each routing-health query: the orphans' anti-joins (both routing
    tables: ``unrouted`` and ``awaited_made``; a pending item checked against its queue's policy:
    ``other_policy``) and the stranded check (an item awaited by a restricted queue)."""
    # Not the prune of the changed videos' list (``routing_recheck_prune``): it reads those videos only.
    sql = [s for s in sql if not s.startswith("DELETE FROM moderation_routingrecheck")]
    both = [s for s in sql if '"moderation_awaitedqueueitem"' in s and '"moderation_reviewtask"' in s]
    other_policy = [
        s for s in sql if s not in both and '"moderation_reviewtask"' in s and '"policy_id" = (' in s and "NOT (" in s
    ]
    return {
        "orphan_anti_joins": len(both),
        "other_policy": len(other_policy),
        "stranded": sum('"moderation_awaitedqueueitem"' in s and "allowed_groups" in s for s in sql),
    }


def test_the_ops_page_runs_each_routing_health_query_once(legacy: Legacy) -> None:
    """Each kind's query reads every decision, item or awaited row: the page (and its routing panel) runs it once,
    its count, the union's count and the first ids all from that one read."""
    from django.test.utils import CaptureQueriesContext

    admin = Client()
    admin.force_login(_staff("admin"))
    for url, headers in (
        (reverse("moderation:ops_dashboard"), {}),
        (reverse("moderation:ops_missing_decisions"), {"HTTP_HX_REQUEST": "true"}),
    ):
        with CaptureQueriesContext(connection) as queries:
            html = admin.get(url, **headers).content.decode()
        assert "5</strong> videos with routing older code left inconsistent" in html
        assert _routing_health_statements([q["sql"] for q in queries.captured_queries]) == {
            "orphan_anti_joins": 2,  # unrouted, awaited_made
            "other_policy": 1,
            "stranded": 1,
        }


def test_routing_counts_are_exact_up_to_the_cap_then_say_so(legacy: Legacy) -> None:
    """Past ``cap`` a kind's count (and the videos') reads "cap+"; below it, exact; the first ids are the union's
    first in id order either way."""
    from moderation.review.selectors import routing_orphans_summary

    w = legacy
    every = sorted(videos_routing_orphaned().values_list("pk", flat=True))
    exact = routing_orphans_summary(first=3, cap=10)
    assert {k: (c.n, c.exact) for k, c in exact.kinds.items()} == {
        "unrouted": (2, True),
        "other_policy": (1, True),
        "awaited_made": (2, True),
    }
    assert (exact.videos.n, exact.videos.exact, exact.first_ids) == (5, True, every[:3])
    capped = routing_orphans_summary(first=4, cap=1)
    assert str(capped.kinds["unrouted"]) == "1+" and str(capped.kinds["other_policy"]) == "1"
    assert (str(capped.videos), capped.first_ids) == ("1+", every[:4])
    assert w.fine.pk not in every
