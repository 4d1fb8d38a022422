"""Queues as data: routing by filters, deadlines and ordering, permissions, skip reasons,
escalation, SLA and handling-time figures on the queue page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from moderation.errors import ModerationError
from moderation.media.models import Video
from moderation.review.models import AuditEvent, ReviewQueue, ReviewSkip, ReviewTask
from moderation.review.selectors import SKIP_REASONS, review_queue_stats, review_queues_for
from moderation.review.services import (
    review_claim_next,
    review_escalate,
    review_release,
    review_skip,
    review_submit,
    review_tasks_create_for_decision,
)
from tests.factories import DecisionFactory, TagTaskFactory

pytestmark = pytest.mark.django_db


def _queue(slug: str, **kwargs) -> ReviewQueue:  # type: ignore[no-untyped-def]
    return ReviewQueue.objects.create(name=slug.title(), slug=slug, **kwargs)


def test_routing_by_label_confidence_and_flags_with_default_fallback(policy_version):
    sexual = _queue("sexual", labels=["色情低俗"], priority=10, sla_seconds=3600)
    unsure = _queue("unsure", confidence_min=0.4, confidence_max=0.6)
    cascade = _queue("cascade", escalated_only=True)
    reported = _queue("reported", user_reported_only=True, required_reviews=2)
    _queue("other-policy", policy=None, labels=["nothing-matches"])

    nsfw = DecisionFactory(policy_version=policy_version, label="色情低俗", is_violation=True, confidence=0.9)
    tasks = review_tasks_create_for_decision(decision=nsfw)
    assert [(t.queue, t.slot) for t in tasks] == [(sexual, 0)]
    [task] = tasks
    assert task.priority == 10 + 90  # queue priority + the item's own (likely violation first)
    assert task.deadline == nsfw.video.created_at + timedelta(hours=1)
    # Idempotent: routing again adds nothing.
    assert review_tasks_create_for_decision(decision=nsfw) == tasks
    assert ReviewTask.objects.filter(decision=nsfw).count() == 1

    mid = DecisionFactory(policy_version=policy_version, confidence=0.5)
    assert {t.queue for t in review_tasks_create_for_decision(decision=mid)} == {unsure}

    escalated = DecisionFactory(policy_version=policy_version, confidence=0.9)
    assert {t.queue for t in review_tasks_create_for_decision(decision=escalated, escalated=True)} == {cascade}

    flagged = DecisionFactory(policy_version=policy_version, confidence=0.9)
    routed = review_tasks_create_for_decision(decision=flagged, user_reported=True)
    assert [(t.queue, t.slot) for t in routed] == [(reported, 0), (reported, 1)]

    plain = DecisionFactory(policy_version=policy_version, confidence=0.9)
    [fallback] = review_tasks_create_for_decision(decision=plain)
    assert fallback.queue.slug == ReviewQueue.DEFAULT_SLUG
    assert AuditEvent.objects.filter(action="decision.routed", object_id=str(plain.pk)).exists()


def test_qa_sample_queue_takes_a_share_in_addition_to_the_normal_queue(policy_version, monkeypatch):
    from moderation.review import services

    qa = _queue("qa", sample_rate=0.25)
    draws = iter([0.1, 0.9])
    monkeypatch.setattr(services.rng, "random", lambda: next(draws))
    sampled = DecisionFactory(policy_version=policy_version)
    not_sampled = DecisionFactory(policy_version=policy_version)
    assert {t.queue.slug for t in review_tasks_create_for_decision(decision=sampled)} == {"qa", "default"}
    assert {t.queue.slug for t in review_tasks_create_for_decision(decision=not_sampled)} == {"default"}
    assert qa.tasks.count() == 1


def test_inference_routes_its_decision_through_the_queues(policy_version, monkeypatch):
    """The inference service's decision lands in the queue that matches it."""
    from moderation.inference.services import decision_create_for_video
    from tests.factories import VideoFactory

    _queue("all-private-deals", labels=["引导私下交易"])
    video = VideoFactory(title="加我微信私聊 买便宜货", asr_text="加我微信|私下交易更便宜")
    decision = decision_create_for_video(video_id=video.pk)
    slugs = set(ReviewTask.objects.filter(decision=decision).values_list("queue__slug", flat=True))
    assert slugs == ({"all-private-deals"} if decision.label == "引导私下交易" else {"default"})


def test_items_are_claimed_by_priority_then_deadline(policy_version, make_user):
    queue = _queue("ordered", sla_seconds=3600)
    now = timezone.now()
    decisions = [DecisionFactory(policy_version=policy_version) for _ in range(3)]
    late, early, urgent = (
        ReviewTask.objects.create(decision=d, queue=queue, priority=p, deadline=now + timedelta(minutes=m))
        for d, p, m in zip(decisions, (0, 0, 5), (30, 10, 60), strict=True)
    )
    user = make_user("moderator")
    got = []
    for _ in range(3):
        task = review_claim_next(user=user, queue=queue)
        got.append(task.pk)
        review_submit(task=task, user=user, verdict="approve")
    assert got == [urgent.pk, early.pk, late.pk]


def test_restricted_queue_is_invisible_and_refused_to_other_groups(policy_version, make_user, client_as):
    seniors = Group.objects.create(name="senior-reviewers")
    senior_q = _queue("senior")
    senior_q.allowed_groups.add(seniors)
    DecisionFactory(policy_version=policy_version)
    task = ReviewTask.objects.create(decision=DecisionFactory(policy_version=policy_version), queue=senior_q)
    plain = make_user("moderator")
    senior = make_user("moderator")
    senior.groups.add(seniors)

    assert senior_q not in review_queues_for(user=plain)
    assert senior_q in review_queues_for(user=senior)
    with pytest.raises(ModerationError, match="may not work"):
        review_claim_next(user=plain, queue=senior_q)

    from django.test import Client

    client = Client()
    client.force_login(plain)
    html = client.get(reverse("moderation:queue")).content.decode()
    assert 'data-queue="senior"' not in html
    # 404, as for a queue that does not exist: its name and existence are its groups' business
    # (tests/moderation/review/test_restricted_queue_refusal.py).
    assert client.get(reverse("moderation:queue_detail", args=["senior"])).status_code == 404
    assert client.post(reverse("moderation:queue_claim_next", args=["senior"])).status_code == 404
    # Even an item in that queue held by no one cannot be opened: 404, its video is hidden from other groups
    # (tests/moderation/review/test_restricted_visibility.py).
    assert client.get(reverse("moderation:review_task", args=[task.pk])).status_code == 404

    senior_client = Client()
    senior_client.force_login(senior)
    assert 'data-queue="senior"' in senior_client.get(reverse("moderation:queue")).content.decode()
    resp = senior_client.post(reverse("moderation:queue_claim_next", args=["senior"]))
    assert resp["Location"] == reverse("moderation:review_task", args=[task.pk])
    # A labeler has no review role at all.
    assert client_as("labeler").get(reverse("moderation:queue_detail", args=["senior"])).status_code == 403


def test_skip_needs_and_records_a_reason(make_task, make_user, client_as):
    first, second = make_task(), make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    with pytest.raises(ModerationError, match="Say why"):
        review_skip(task=first, user=alice, reason="  ")
    with pytest.raises(ModerationError, match="listed reasons"):
        review_skip(task=first, user=alice, reason="<script>x</script> not on the list")
    assert not ReviewSkip.objects.exists()
    reason = "Needs language or context I lack"
    assert review_skip(task=first, user=alice, reason=reason).pk == second.pk
    skip = ReviewSkip.objects.get()
    assert (skip.task_id, skip.user, skip.reason) == (first.pk, alice, reason)
    event = AuditEvent.objects.get(action="skip")
    assert event.actor == alice and event.payload["reason"] == reason

    from django.test import Client

    client = Client()
    client.force_login(alice)
    resp = client.post(reverse("moderation:review_skip", args=[second.pk]), {"reason": "Media does not play"})
    assert resp["Location"] == reverse("moderation:review_task", args=[first.pk])
    assert ReviewSkip.objects.filter(reason="Media does not play", task=second).exists()


def test_escalate_hands_the_item_to_the_senior_queue(policy_version, make_user, client_as):
    senior_q = _queue("senior", routes_new_decisions=False, priority=20)
    first_line = _queue("first-line", escalation_queue=senior_q)
    decision = DecisionFactory(policy_version=policy_version)
    [task] = review_tasks_create_for_decision(decision=decision)
    assert task.queue == first_line
    alice, boss = make_user("moderator"), make_user("moderator")
    review_claim_next(user=alice, queue=first_line)

    senior_task = review_escalate(task=task, user=alice, reason="Possible minor on screen")

    task.refresh_from_db()
    assert task.status == ReviewTask.Status.ESCALATED
    assert senior_task.queue == senior_q and senior_task.status == ReviewTask.Status.PENDING
    assert senior_task.deadline == task.deadline
    with pytest.raises(ModerationError, match="escalated"):
        review_submit(task=task, user=alice, verdict="approve")
    event = AuditEvent.objects.get(action="escalate")
    assert event.payload["to_queue"] == "senior" and event.payload["reason"] == "Possible minor on screen"
    assert review_claim_next(user=boss, queue=senior_q).pk == senior_task.pk
    review_submit(task=senior_task, user=boss, verdict="approve")
    # A queue without a senior queue says so.
    other = review_claim_next(user=alice) or None
    assert other is None
    plain = ReviewTask.objects.create(decision=DecisionFactory(policy_version=policy_version), queue=senior_q)
    review_claim_next(user=alice, queue=senior_q)
    with pytest.raises(ModerationError, match="no senior queue"):
        review_escalate(task=plain, user=alice, reason="x")


def test_escalate_from_the_review_screen(policy_version, make_user):
    from django.test import Client

    senior_q = _queue("senior", routes_new_decisions=False)
    first_line = _queue("first-line", escalation_queue=senior_q)
    first, second = (
        review_tasks_create_for_decision(decision=DecisionFactory(policy_version=policy_version))[0] for _ in range(2)
    )
    alice = make_user("moderator")
    client = Client()
    client.force_login(alice)
    client.post(reverse("moderation:queue_claim_next", args=[first_line.slug]))
    html = client.get(reverse("moderation:review_task", args=[first.pk])).content.decode()
    assert 'data-hotkey="e"' in html and "<kbd>e</kbd>" in html
    resp = client.post(reverse("moderation:review_escalate", args=[first.pk]), {"reason": "needs a lawyer"})
    assert resp["Location"] == reverse("moderation:review_task", args=[second.pk])
    assert ReviewTask.objects.filter(queue=senior_q, decision=first.decision).exists()


def test_queue_page_shows_sla_breaches_and_median_handling_time(make_task, make_user, client_as):
    now = timezone.now()
    alice = make_user("moderator")
    overdue = make_task(deadline=now - timedelta(minutes=5))
    make_task(deadline=now + timedelta(hours=1))
    for minutes in (2, 4, 9):
        done = make_task(deadline=now + timedelta(hours=1))
        ReviewTask.objects.filter(pk=done.pk).update(
            status=ReviewTask.Status.DONE,
            claimed_by=alice,
            claimed_at=now - timedelta(minutes=minutes),
            completed_at=now,
        )
    late = make_task(deadline=now - timedelta(hours=1))
    ReviewTask.objects.filter(pk=late.pk).update(
        status=ReviewTask.Status.DONE, claimed_by=alice, claimed_at=now - timedelta(minutes=30), completed_at=now
    )

    stats = review_queue_stats(queue=overdue.queue)

    assert stats["sla_breached"] == 2  # the open overdue item and the one decided after its deadline
    assert stats["median_handling_s"] == pytest.approx(((4 + 9) / 2) * 60, abs=1)
    html = client_as("moderator").get(reverse("moderation:queue")).content.decode()
    assert '<td data-stat="sla_breached">2</td>' in html
    assert '<td data-stat="median_handling">6m 30s</td>' in html  # it read "390 s" (and "6838 s" for 1h 53m)
    detail = client_as("moderator").get(reverse("moderation:queue_detail", args=["default"])).content.decode()
    assert '<td data-stat="sla_breached">2</td>' in detail
    assert '<td data-stat="median_handling">6m 30s</td>' in detail


@pytest.mark.parametrize(
    ("seconds", "shown"), [(42.4, "0m 42s"), (390, "6m 30s"), (6838, "1h 53m"), (3 * 86400 + 7200 + 59, "3d 2h")]
)
def test_a_handling_time_reads_as_the_review_screens_countdown(seconds, shown):
    from moderation.templatetags.durations import span

    assert span(seconds) == shown


def test_claim_time_decision_time_and_reviewer_are_recorded(make_task, make_user):
    task = make_task()
    alice = make_user("moderator")
    before = timezone.now()
    review_claim_next(user=alice)
    review_submit(task=task, user=alice, verdict="approve")
    task.refresh_from_db()
    assert task.claimed_by == alice and before <= task.claimed_at <= task.completed_at
    assert list(AuditEvent.objects.filter(object_id=str(task.pk)).order_by("pk").values_list("action", flat=True)) == [
        "claim",
        "review.approve",
    ]
    assert Video.objects.exists()


def test_queue_list_reuses_recent_counts_and_says_how_old_they_are(make_task, make_user, settings):
    from django.core.cache import cache
    from django.test import Client

    from moderation.review.selectors import review_queue_overview_recent

    make_task(), make_task()
    alice = make_user("moderator")
    client = Client()
    client.force_login(alice)
    queue = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)

    def pending_on_page() -> str:
        html = client.get(reverse("moderation:queue")).content.decode()
        assert 'data-stat="as_of"' in html and "Counts as of" in html
        row = html.split(f'data-queue="{queue.slug}"', 1)[1]
        return row.split('data-stat="pending">', 1)[1].split("<", 1)[0]

    assert pending_on_page() == "2"
    review_claim_next(user=alice, queue=queue)
    assert pending_on_page() == "2"  # counted a moment ago: reused, not recounted
    first = review_queue_overview_recent(queues=[queue])[queue.pk]["as_of"]

    cache.clear()  # what REVIEW_STATS_MAX_AGE_SECONDS running out does
    assert pending_on_page() == "1"
    assert review_queue_overview_recent(queues=[queue])[queue.pk]["as_of"] > first

    settings.REVIEW_STATS_MAX_AGE_SECONDS = 0  # counted on every request
    review_claim_next(user=make_user("moderator"), queue=queue)
    assert pending_on_page() == "0"


def test_n_on_the_queue_list_claims_from_the_next_queue_when_its_counts_are_stale(make_task, make_user, client_as):
    """ "n" chooses its queue by counts up to 10 s old: an emptied queue must not answer "Queue is empty"
    (the page reloading in place) while another queue the reviewer works has an item."""
    urgent = _queue("urgent", priority=5)
    taken = make_task(queue=urgent)
    waiting = make_task()  # the default queue
    after = make_task()  # its next item, which the screen preloads (claimed ahead) as for any claim
    client = client_as("moderator")
    page = client.get(reverse("moderation:queue")).content.decode()
    hotkey = page.split('data-queue="urgent"', 1)[1].split("</tr>", 1)[0]
    assert 'data-hotkey="n" name="then" value="any"' in hotkey  # "n" is on the most urgent queue's row
    review_claim_next(user=make_user("moderator"), queue=urgent)  # emptied since the counts were taken

    response = client.post(reverse("moderation:queue_claim_next", args=["urgent"]), {"then": "any"}, follow=True)

    assert response.redirect_chain[0][0] == reverse("moderation:review_task", args=[waiting.pk])
    assert "“Urgent” has nothing left to claim; this item is from “Default”." in response.content.decode()
    taken.refresh_from_db()
    waiting.refresh_from_db()
    assert waiting.status == ReviewTask.Status.CLAIMED and taken.claimed_by != waiting.claimed_by
    after.refresh_from_db()
    assert after.status == ReviewTask.Status.CLAIMED and after.claimed_by == waiting.claimed_by
    # The row's own button, without "then", still answers for its queue only.
    plain = client.post(reverse("moderation:queue_claim_next", args=["urgent"]))
    assert plain["Location"] == reverse("moderation:queue")


def test_claim_next_on_a_reviewed_item_claims_from_that_items_queue(make_task, make_user, client_as):
    """The reviewed screen's "Claim next" (n) claimed from the default queue, whatever queue the item was in."""
    from django.test import Client

    senior = ReviewQueue.objects.create(name="Senior", slug="senior")
    done = make_task(queue=senior, priority=5)
    waiting_senior = make_task(queue=senior, priority=1)
    make_task(priority=100)  # the default queue has more urgent work
    user = make_user("moderator")
    claimed = review_claim_next(user=user, queue=senior)
    assert claimed == done
    review_submit(task=done, user=user, verdict="approve")
    client = Client()
    client.force_login(user)
    html = client.get(reverse("moderation:review_task", args=[done.pk])).content.decode()
    action = reverse("moderation:queue_claim_next", args=["senior"])
    assert f'action="{action}"' in html and "from “Senior”" in html
    resp = client.post(action)
    assert resp["Location"] == reverse("moderation:review_task", args=[waiting_senior.pk])


def _counts_on_page(client, slug: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The queue list's row for ``slug``: its counts, and whether its "Claim next" can be pressed."""
    html = client.get(reverse("moderation:queue")).content.decode()
    row = html.split(f'data-queue="{slug}"', 1)[1].split("</tr>", 1)[0]
    counts = {
        stat: row.split(f'data-stat="{stat}">', 1)[1].split("<", 1)[0].strip()
        for stat in ("pending", "done", "escalated")
    }
    counts["claim"] = "disabled" if "disabled" in row.split("Claim next", 1)[0].rsplit("<button", 1)[1] else "enabled"
    counts["empty_note"] = str("Nothing is waiting in your queues." in html)
    return counts


def test_an_item_escalated_to_an_empty_senior_queue_is_offered_at_once(make_task, make_user):
    """The senior's list was drawn (its counts kept) while their queue was empty; an item escalated right
    after must be offered at once, not "empty" / "Nothing is waiting" for up to 10 s. Here the write's
    commit never reaches the counts (the test's transaction is not committed): the live "claimable"
    check alone must say so."""
    from django.test import Client

    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    task = make_task()
    moderator, senior_reviewer = make_user("moderator"), make_user("moderator")
    client = Client()
    client.force_login(senior_reviewer)
    review_claim_next(user=moderator)
    assert _counts_on_page(client, "senior") == {
        "pending": "0",
        "done": "0",
        "escalated": "0",
        "claim": "disabled",
        "empty_note": "True",
    }

    handed = review_escalate(task=task, user=moderator, reason="Coded slang")

    assert _counts_on_page(client, "senior") == {
        "pending": "1",
        "done": "0",
        "escalated": "0",
        "claim": "enabled",
        "empty_note": "False",
    }
    assert client.post(reverse("moderation:queue_claim_next", args=["senior"]))["Location"] == reverse(
        "moderation:review_task", args=[handed.pk]
    )


def test_a_lapsed_lease_makes_its_queue_claimable_on_the_list_at_once(make_task, make_user):
    from django.test import Client

    task = make_task()
    holder = make_user("moderator")
    review_claim_next(user=holder)
    client = Client()
    client.force_login(make_user("moderator"))
    assert _counts_on_page(client, "default")["claim"] == "disabled"
    ReviewTask.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert _counts_on_page(client, "default")["claim"] == "enabled"
    html = client.get(reverse("moderation:queue")).content.decode()
    assert "(1 with a lapsed lease, claimable)" in html


def test_the_queue_list_counts_again_after_each_write_that_changes_a_queue(
    make_task, make_user, django_capture_on_commit_callbacks
):
    """Counts kept for the list are dropped when a write to their queue commits (routing, release, skip,
    verdict, escalation), so a reviewer sees the change at the next poll, not up to 10 s later; a claim
    alone keeps them (counted again only when the queue's live 'claimable' disagrees)."""
    from django.test import Client

    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    make_task(queue=senior)
    first, second = make_task(priority=1000), make_task(priority=999)  # before any routed item
    alice, bob = make_user("moderator"), make_user("moderator")
    client = Client()
    client.force_login(make_user("moderator"))

    def page() -> tuple[str, str, str]:
        row = _counts_on_page(client, "default")
        return row["pending"], row["done"], row["escalated"]

    held = review_claim_next(user=alice)
    assert held == first and page() == ("1", "0", "0") and _counts_on_page(client, "senior")["pending"] == "1"
    with django_capture_on_commit_callbacks(execute=True):
        review_tasks_create_for_decision(decision=DecisionFactory(policy_version=first.decision.policy_version))
    assert page() == ("2", "0", "0")  # a new item
    with django_capture_on_commit_callbacks(execute=True):
        review_release(task=held, user=alice)
    assert page() == ("3", "0", "0")  # released

    assert review_claim_next(user=alice) == first
    ReviewTask.objects.filter(pk=second.pk).update(
        status=ReviewTask.Status.CLAIMED, claimed_by=bob, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert page() == ("3", "0", "0")  # claims alone: the kept counts serve (the queue is still claimable)
    with django_capture_on_commit_callbacks(execute=True):
        took = review_skip(task=first, user=alice, reason=SKIP_REASONS[0])
    assert took == second and page() == ("2", "0", "0")  # skipped: first waits again, the lapsed one taken

    with django_capture_on_commit_callbacks(execute=True):
        review_submit(task=second, user=alice, verdict="approve")
    assert page() == ("2", "1", "0")  # decided

    assert review_claim_next(user=bob) == first
    with django_capture_on_commit_callbacks(execute=True):
        review_escalate(task=first, user=bob, reason="Coded slang")
    assert page() == ("1", "1", "1") and _counts_on_page(client, "senior")["pending"] == "2"


def test_a_polled_queue_list_does_not_count_its_queues_again(make_task, make_user):
    """What the kept counts are for: a list polled every 15 s by every reviewer does not recount each queue's
    whole history per request; it only looks up, per queue, whether an item waits (one query for all)."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    make_task(), make_task()
    client = Client()
    client.force_login(make_user("moderator"))
    with CaptureQueriesContext(connection) as first:
        client.get(reverse("moderation:queue"))
    with CaptureQueriesContext(connection) as polled:
        client.get(reverse("moderation:queue"), headers={"HX-Request": "true"})

    def pipeline(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        # The count of videos still being processed (``review_videos_in_pipeline``): it reads only those videos (its
        # partial index), no queue's history, and is counted on each poll: the list shows an item once it is routed.
        return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('SELECT COUNT("moderation_video"')]

    def counting(ctx) -> list[str]:  # type: ignore[no-untyped-def]
        found = [q["sql"] for q in ctx.captured_queries if "percentile_cont" in q["sql"] or "COUNT(" in q["sql"]]
        return [sql for sql in found if sql not in pipeline(ctx)]

    assert len(counting(first)) == 2
    assert counting(polled) == []
    assert len(pipeline(first)) == len(pipeline(polled)) == 1
    print(f"queue list: {len(first.captured_queries)} queries drawn, {len(polled.captured_queries)} polled")


def test_the_queue_list_works_while_the_shared_cache_is_unreachable(
    make_task, make_user, settings, django_capture_on_commit_callbacks
):
    """With Redis down, a write cannot tell other processes to drop their counts: the list still answers (counts
    reused for their time only) and a verdict is still recorded, never a server error."""
    from django.test import Client

    task = make_task()
    make_task()
    settings.CACHES = {
        **settings.CACHES,
        # The discard port: nothing answers.
        "shared": {**settings.REDIS_SHARED_CACHE, "LOCATION": "redis://127.0.0.1:9/0"},
    }
    alice = make_user("moderator")
    client = Client()
    client.force_login(make_user("moderator"))
    assert _counts_on_page(client, "default")["pending"] == "2"
    review_claim_next(user=alice)
    with django_capture_on_commit_callbacks(execute=True):
        review_submit(task=task, user=alice, verdict="approve")
    task.refresh_from_db()
    assert task.status == ReviewTask.Status.DONE
    row = _counts_on_page(client, "default")
    assert (row["pending"], row["claim"]) == ("2", "enabled")  # reused for up to 10 s, still offered (1 waits)


def _held_line(page: str, slug: str) -> str:
    start = page.index(f'id="held-item-{slug}"')
    return page[start : page.index("</p>", start)]


def test_the_queue_list_names_the_item_held_in_each_queue_in_its_row(make_task, make_user, client_as):
    """Walked: a reviewer holding items in two queues read "You hold video X in Sexual — continue" above the table
    and nothing of the other queue's item. Each queue's row now names the item held there (the one its "Claim
    next" gives back), with its continue link; never one whose video was hidden from the reviewer since."""
    from moderation.tagging.services import tag_queue_default

    sexual, spam, retired = _queue("sexual", priority=10), _queue("spam", priority=5), _queue("retired")
    tags = tag_queue_default()
    first = make_task(queue=sexual, decision__video__title="Held in sexual")
    make_task(queue=sexual, decision__video__title="Claimed ahead in sexual")
    second = make_task(queue=spam, decision__video__title="Held in spam")
    third = make_task(queue=tags, decision__video__title="Hidden since")
    fourth = make_task(queue=retired, decision__video__title="In a queue switched off")
    moderator = make_user("moderator")
    client = client_as(None)
    client.force_login(moderator)
    for queue in (sexual, spam):
        client.post(reverse("moderation:queue_claim_next", args=[queue.slug]))
    assert ReviewTask.objects.filter(claimed_by=moderator, queue=sexual).count() == 2  # the second claimed ahead
    assert review_claim_next(user=moderator, queue=tags) == third
    assert review_claim_next(user=moderator, queue=retired) == fourth
    ReviewQueue.objects.filter(pk=retired.pk).update(is_active=False)
    # The tags item's video is routed since to a queue of a group the moderator is not in: hidden from them
    # (a tags item opens nothing).
    experts = _queue("experts-only")
    experts.allowed_groups.add(Group.objects.create(name="experts-only"))
    ReviewTask.objects.create(decision=third.decision, queue=experts)

    page = client.get(reverse("moderation:queue")).content.decode()
    for queue, task, title in ((sexual, first, "Held in sexual"), (spam, second, "Held in spam")):
        line = _held_line(page, queue.slug)
        video = task.decision.video_id
        assert (
            f'You hold <span class="video-number" data-video-number="{video}">video #{video}</span> “{title}”' in line
        )
        assert f"(item #{task.pk}, until " in line
        assert f'<a href="{reverse("moderation:review_task", args=[task.pk])}">continue</a>' in line
        # In the queue's own row, right under it.
        row = page.index(f'<tr data-queue="{queue.slug}"')
        assert row < page.index(f'data-held-in="{queue.slug}"') < page.index("<tr data-queue=", row + 1)
    assert f'<tr data-queue="{tags.slug}"' in page and f'data-held-in="{tags.slug}"' not in page
    assert "Hidden since" not in page and f"item #{third.pk}" not in page
    assert "Claimed ahead in sexual" not in page
    # Held in a queue the list no longer shows: still named, with its queue, above the table.
    line = _held_line(page, retired.slug)
    assert (
        "</span> “In a queue switched off” in “Retired”" in line
        and "You hold <span" in line
        and page.index(line) < page.index("<table")
    )
    assert page.count('class="panel held-item"') == 3
    # "Claim next" in each queue gives back the item its row names.
    for queue, task in ((sexual, first), (spam, second)):
        response = client.post(reverse("moderation:queue_claim_next", args=[queue.slug]))
        assert response["Location"] == reverse("moderation:review_task", args=[task.pk])
    # Another reviewer sees none of them.
    assert "held-item" not in client_as("moderator").get(reverse("moderation:queue")).content.decode()


def test_a_skip_says_which_item_was_passed_on_and_why(make_task, make_user):
    """Walked: pressing n (skip) swapped in the next item with no word about the one passed on, so a reviewer
    could not tell a skip from a misfired key, nor which item went back and with what reason."""
    from django.test import Client

    first, second = make_task(), make_task()
    alice = make_user("moderator")
    review_claim_next(user=alice)
    client = Client()
    client.force_login(alice)
    page = client.post(
        reverse("moderation:review_skip", args=[first.pk]), {"reason": "Media does not play"}, follow=True
    )
    assert page.redirect_chain[-1][0] == reverse("moderation:review_task", args=[second.pk])
    said = [str(m) for m in page.context["messages"]]
    assert said == [f"Skipped item #{first.pk} (Media does not play): it is back in the queue for another reviewer."]


def test_a_queue_page_gives_its_sla_as_a_span_of_time(client_as):
    """Walked: the queue's page said "SLA 86400 s from ingest"; a moderator reads a day, not 86,400 seconds."""
    _queue("legal", sla_seconds=86400)
    _queue("quick", sla_seconds=5400)
    page = client_as("moderator").get(reverse("moderation:queue_detail", args=["legal"])).content.decode()
    assert "SLA 1d 0h from ingest" in page and "86400" not in page
    page = client_as("moderator").get(reverse("moderation:queue_detail", args=["quick"])).content.decode()
    assert "SLA 1h 30m from ingest" in page


def test_whoever_escalated_an_item_is_never_served_its_senior_copy(make_task, make_user):
    """Four eyes: the moderator who escalated an item (or already decided it) never gets it in another queue."""
    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    task = make_task()
    moderator, other = make_user("moderator"), make_user("moderator")
    assert review_claim_next(user=moderator).pk == task.pk
    handed = review_escalate(task=task, user=moderator, reason="Coded slang")

    assert review_claim_next(user=moderator, queue=senior) is None
    from django.test import Client

    client = Client()
    client.force_login(moderator)
    page = client.get(reverse("moderation:review_task", args=[handed.pk]))
    assert page.status_code == 403
    assert "You escalated this item in “Default”" in page.content.decode()
    claimed = client.post(reverse("moderation:queue_claim_next", args=["senior"]), follow=True).content.decode()
    assert "ones you escalated or reviewed in another queue" in claimed
    # A claim on it held from before the rule does not take a verdict from them either.
    ReviewTask.objects.filter(pk=handed.pk).update(status=ReviewTask.Status.CLAIMED, claimed_by=moderator)
    with pytest.raises(ModerationError, match="four eyes"):
        review_submit(task=handed, user=moderator, verdict="approve")
    ReviewTask.objects.filter(pk=handed.pk).update(status=ReviewTask.Status.PENDING, claimed_by=None)

    assert review_claim_next(user=other, queue=senior).pk == handed.pk
    review_submit(task=handed, user=other, verdict="approve")


def _senior_row(html: str) -> str:
    start = html.index('<tr data-queue="senior"')
    return html[start : html.index("</tr>", start)]


def test_the_queue_list_offers_no_claim_in_a_senior_queue_holding_only_what_the_reviewer_escalated(
    make_task, make_user
):
    """Four eyes on the queue list: a senior queue whose items are all ones this reviewer escalated (or decided)
    offered them "Claim next", which then came back empty; it now says why, and offers the claim to others."""
    from django.test import Client

    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    moderator, other = make_user("moderator"), make_user("moderator")
    for _ in range(2):
        make_task()
        task = review_claim_next(user=moderator)
        review_escalate(task=task, user=moderator, reason="Coded slang")

    def row_for(user) -> str:  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return _senior_row(client.get(reverse("moderation:queue")).content.decode())

    row = row_for(moderator)
    assert "disabled" in row
    assert "All 2 open items here are ones you escalated or decided: another reviewer must take them" in row
    row = row_for(other)
    assert "disabled" not in row and "escalated or decided" not in row

    # One item they never saw arrives: the claim would hand it to them, so the list offers it.
    fresh = make_task(queue=senior)
    row = row_for(moderator)
    assert "disabled" not in row and "escalated or decided" not in row
    assert review_claim_next(user=moderator, queue=senior).pk == fresh.pk


def test_a_queues_own_page_offers_claim_next_only_where_the_list_does(make_task, make_user):
    """Walk hwalk22: the senior queue's own page offered "Claim next" and its "n" to the reviewer who had escalated
    its only item (and to anyone in an empty queue); pressing it bounced to the queue list with "Nothing to claim for
    you". The page greys it out and says why, as the queue list's row does."""
    from django.test import Client

    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    moderator, other = make_user("moderator"), make_user("moderator")
    make_task()
    review_escalate(task=review_claim_next(user=moderator), user=moderator, reason="Coded slang")

    def page_for(user, queue) -> str:  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return client.get(reverse("moderation:queue_detail", args=[queue.slug])).content.decode()

    html = page_for(moderator, senior)
    assert "The 1 open item here is one you escalated or decided: another reviewer must take it" in html
    assert 'data-hotkey="n"' not in html and "disabled" in html
    html = page_for(other, senior)
    assert 'data-hotkey="n"' in html and "disabled" not in html
    assert 'name="then"' not in html  # this queue's page claims from this queue only
    empty = page_for(other, default)
    assert 'data-hotkey="n"' not in empty and '<span class="hint">empty</span>' in empty


def test_the_queue_pages_name_the_item_held_ahead_for_the_reviewer(make_task, make_user):
    """Walk hwalk22: the review screen claims the next item ahead (it preloads it), so a reviewer holds two; the
    queue's page said "You are holding item #4." beside "Claimed 2", the other unexplained. Both queue pages name it."""
    from django.test import Client

    from moderation.review.services import review_claim_ahead

    make_task()
    make_task()
    moderator = make_user("moderator")
    current = review_claim_next(user=moderator)
    ahead = review_claim_ahead(user=moderator, task=current)
    assert ahead is not None and ahead.pk != current.pk
    client = Client()
    client.force_login(moderator)
    said = f"item #{ahead.pk} is also yours, held as the next to show you"
    for page in (reverse("moderation:queue"), reverse("moderation:queue_detail", args=[current.queue.slug])):
        html = client.get(page).content.decode()
        assert f"item #{current.pk}" in html and said in html, page


def test_n_on_the_queue_list_goes_back_to_the_held_moderation_item_before_a_held_tag_item(make_task, make_user):
    """Walk hwalk22: a moderator holding a tag item (claimed earlier) and a moderation item pressed "n" on the review
    queues to go on moderating and landed on the tag screen, where the "3" and Enter they typed for an override
    ticked a chip and submitted that video's tags. "n" goes back to the moderation item first."""
    from django.test import Client

    from moderation.tagging.services import tag_queue_default

    moderator = make_user("moderator")
    tag_item = TagTaskFactory(decision=make_task().decision)
    assert review_claim_next(user=moderator, queue=tag_queue_default()).pk == tag_item.pk  # the earlier claim
    item = review_claim_next(user=moderator)
    assert item is not None and item.queue.slug == ReviewQueue.DEFAULT_SLUG
    client = Client()
    client.force_login(moderator)
    html = client.get(reverse("moderation:queue")).content.decode()
    row = html.split(f'data-queue="{ReviewQueue.DEFAULT_SLUG}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-hotkey="n"' in row
    assert html.count('data-hotkey="n"') == 1


def test_tagging_a_video_does_not_keep_its_moderation_item_from_the_tagger(make_task, make_user, client_as):
    """Walked: a moderator who had tagged a video in "Content tags" was never served its moderation item (and the
    reverse): four eyes counted the tags as a verdict. The claim skipped even their own claims on those items, and
    the tags queue answered "The tags queue is empty." while four items waited. Four eyes is between copies of the
    same work (a verdict and its senior or adjudication copy), not between tagging and moderating."""
    from moderation.tagging.services import tag_queue_default

    task = make_task()
    tags = tag_queue_default()
    tag_item = TagTaskFactory(decision=task.decision)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator, queue=tags).pk == tag_item.pk
    ReviewTask.objects.filter(pk=tag_item.pk).update(status=ReviewTask.Status.DONE, completed_at=timezone.now())

    assert review_claim_next(user=moderator).pk == task.pk
    review_submit(task=task, user=moderator, verdict="approve")  # refused before: "You reviewed this item in …"

    # The reverse: the video's moderator may tag it.
    other = TagTaskFactory(decision=make_task().decision)
    decided = ReviewTask.objects.filter(decision=other.decision).exclude(pk=other.pk).get()
    ReviewTask.objects.filter(pk=decided.pk).update(
        status=ReviewTask.Status.DONE, claimed_by=moderator, completed_at=timezone.now()
    )
    assert review_claim_next(user=moderator, queue=tags).pk == other.pk


def test_a_senior_reads_why_an_item_was_escalated_before_the_model_verdict(make_task, make_user):
    """Walked: on the senior queue's item the escalation's reason came last in the right column, under the model's
    verdict, the user feedback and a dozen tag chips; the senior had to scroll to learn why the item was theirs."""
    from django.test import Client

    senior = _queue("senior", routes_new_decisions=False)
    default = ReviewQueue.objects.get(slug=ReviewQueue.DEFAULT_SLUG)
    default.escalation_queue = senior
    default.save(update_fields=["escalation_queue"])
    task = make_task()
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator).pk == task.pk
    handed = review_escalate(task=task, user=moderator, reason="需要资深审核: coded slang?")
    lead = make_user("moderator")
    assert review_claim_next(user=lead, queue=senior).pk == handed.pk
    client = Client()
    client.force_login(lead)
    page = client.get(reverse("moderation:review_task", args=[handed.pk])).content.decode()
    escalated = page.index('id="escalations"')
    assert "需要资深审核: coded slang?" in page[escalated : page.index("</section>", escalated)]
    assert escalated < page.index('id="model-verdict"') < page.index('id="tags"')


def test_the_queue_list_offers_claim_next_exactly_where_the_claim_finds_an_item_open_to_the_reviewer(
    make_task, make_user
):
    """The list's check left out the video-visibility rule the claim applies (``video_open_to_q``): a tags queue
    whose only item is of a video routed since to a restricted queue offered a moderator outside its group "Claim
    next", which then came back empty. The check applies the claim's rule: disabled for them, still offered to
    the restricted queue's reviewers (and admins), whom the claim hands the item."""
    from django.test import Client

    from moderation.tagging.services import tag_queue_default

    tags = tag_queue_default()
    hidden_item = TagTaskFactory(decision=make_task().decision)
    hidden_video = hidden_item.decision.video
    ReviewTask.objects.filter(decision__video=hidden_video).exclude(pk=hidden_item.pk).delete()  # only the tags item
    experts = _queue("experts-only")
    experts.allowed_groups.add(Group.objects.create(name="experts-only"))
    ReviewTask.objects.create(decision=hidden_item.decision, queue=experts)  # routed to a restricted queue
    moderator, expert, admin = make_user("moderator"), make_user("moderator"), make_user("admin")
    expert.groups.add(Group.objects.get(name="experts-only"))

    def row(user) -> dict[str, str]:  # type: ignore[no-untyped-def]
        client = Client()
        client.force_login(user)
        return _counts_on_page(client, tags.slug)

    # Not open to the moderator: nothing offered, as the claim finds nothing, and the row says why.
    assert row(moderator)["claim"] == "disabled"
    client = Client()
    client.force_login(moderator)
    line = client.get(reverse("moderation:queue")).content.decode().split(f'data-queue="{tags.slug}"', 1)[1]
    assert "nothing waiting here is open to you" in line.split("</tr>", 1)[0]
    assert review_claim_next(user=moderator, queue=tags) is None
    # Open to the restricted queue's reviewers and to admins: offered, and the claim hands it to them.
    assert row(expert)["claim"] == "enabled"
    assert row(admin)["claim"] == "enabled"
    assert review_claim_next(user=expert, queue=tags).pk == hidden_item.pk
    review_release(task=ReviewTask.objects.get(pk=hidden_item.pk), user=expert)

    # An item the moderator may open arrives behind it: offered to them again, and the claim hands them that one.
    ReviewTask.objects.filter(pk=hidden_item.pk).update(priority=10)  # the hidden one stays first in claim order
    open_item = TagTaskFactory(decision=make_task().decision)
    assert row(moderator)["claim"] == "enabled"
    assert review_claim_next(user=moderator, queue=tags).pk == open_item.pk


def test_the_tags_queues_page_says_where_its_items_are_tagged_not_verdict_agreement(policy_version, client_as):
    """Walk hwalk20: the Content tags queue's page said its items were "verdicts of the policy's serving model" and
    showed agreement-between-verdicts tables that could only ever read 0 (tag reviews are not verdicts); the
    agreement dashboard listed the queue with the same zeros. A verdict queue's page keeps both."""
    task = TagTaskFactory(decision__policy_version=policy_version)
    client = client_as("moderator")
    page = client.get(reverse("moderation:queue_detail", args=[task.queue.slug])).content.decode()
    assert "data-tags-queue" in page and f'href="{reverse("moderation:tag_queue")}">Tags</a> screen' in page
    assert "verdicts of" not in page and 'id="agreement"' not in page
    assert '<td data-stat="pending">1</td>' in page  # its load is still shown
    page = client.get(reverse("moderation:queue_detail", args=["default"])).content.decode()
    assert "verdicts of the policy's serving model" in page and 'id="agreement"' in page
    assert "data-tags-queue" not in page
    dashboard = client.get(reverse("moderation:review_agreement")).content.decode()
    assert 'data-agreement-queue="default"' in dashboard
    assert f'data-agreement-queue="{task.queue.slug}"' not in dashboard
