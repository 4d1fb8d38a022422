"""Pass 9: an adversarial pass over what merged into main on 2026-12-05 from 17:00 UTC: the atomic Redis rate counts,
the show-once token page, restricted queue names (``review_queue_named_for``), the browsable API under CSP, hard
links in integration folders, the CSP collector, the webhook endpoint audit, the evaluation file hashed by the worker,
RoleBackend, the settings checks, the impact preview's POST and the Tag2CoT bound. Each test below is a finding and
its fix."""

from __future__ import annotations

import socket
import time
import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next, review_submit, review_tasks_create_for_decision
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db

SECRET = "Legal counsel"


def _restricted(**fields) -> tuple[ReviewQueue, Group]:  # type: ignore[no-untyped-def]
    legal = Group.objects.create(name=f"legal-{uuid.uuid4().hex[:6]}")
    queue = ReviewQueue.objects.create(name=SECRET, slug=f"legal-{uuid.uuid4().hex[:6]}", **fields)
    queue.allowed_groups.add(legal)
    return queue, legal


def _signed_in(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


# --- restricted queues: a video page, a disagreement ----------------------------------------------------------------


def test_the_video_page_does_not_name_the_restricted_senior_queue_an_escalated_item_waits_in(
    policy_version, make_user
) -> None:
    """Finding: a moderator who escalated an item to a senior queue restricted to groups they are not of read "a
    senior queue" on the item, its confirmation and the queue's page (``review_queue_named_for``), but the video's
    own page, which they still see, said "Waiting in queue “Legal counsel”" in its Outcome panel (and so did an
    adjudication's page, which draws the same panel). Each open item's queue is named there by the same rule now."""
    senior, legal = _restricted(routes_new_decisions=False)
    first_line = ReviewQueue.objects.create(name="First line", slug="first-line-9", escalation_queue=senior)
    [task] = review_tasks_create_for_decision(decision=DecisionFactory(policy_version=policy_version))
    outsider = _signed_in(make_user("moderator"))
    outsider.post(reverse("moderation:queue_claim_next", args=[first_line.slug]))
    outsider.post(reverse("moderation:review_escalate", args=[task.pk]), {"reason": "needs a lawyer"})
    assert ReviewTask.objects.get(pk=task.pk).status == ReviewTask.Status.ESCALATED
    video_page = reverse("moderation:video_detail", args=[task.decision.video_id])

    page = outsider.get(video_page)
    assert page.status_code == 200
    outcome = page.content.decode()
    outcome = outcome[outcome.index('data-outcome="review"') :]
    outcome = outcome[: outcome.index("</dd>")]
    assert SECRET not in outcome and "Waiting in a queue not open to you" in outcome

    member = make_user("moderator")
    member.groups.add(legal)
    assert f"Waiting in queue “{SECRET}”" in _signed_in(member).get(video_page).content.decode()


def _disagree(queue: ReviewQueue, group: Group, policy_version, make_user) -> ReviewTask:  # type: ignore[no-untyped-def]
    """Two members of ``group`` give ``queue``'s item (two reviews each) different verdicts: its adjudication item."""
    decision = DecisionFactory(policy_version=policy_version)
    review_tasks_create_for_decision(decision=decision)
    first, second = make_user("moderator"), make_user("moderator")
    for user in (first, second):
        user.groups.add(group)
    mine, theirs = review_claim_next(user=first, queue=queue), review_claim_next(user=second, queue=queue)
    other = next(label for label in policy_version.label_names() if label != decision.label)
    review_submit(task=mine, user=first, verdict="approve", note="FIRST-NOTE")
    review_submit(task=theirs, user=second, verdict="override", label=other, severity="high", note="SECOND-NOTE")
    return ReviewTask.objects.exclude(queue=queue).get(decision=decision)


def test_a_restricted_queues_disagreement_is_not_handed_to_the_adjudication_queue_open_to_all(
    policy_version, make_user
) -> None:
    """Finding: a queue restricted to groups that asks two reviews of each item and names no adjudication queue handed
    a disagreement to the default "Adjudication" queue, open to every moderator. An item there opened the video to
    them all (an item of the same policy in a queue open to all), so any moderator could claim it and read the
    restricted video, both members' verdicts and notes, and the restricted queue's name. Such a queue's
    disagreements now go to an adjudication queue of its own, restricted to the same groups."""
    queue, legal = _restricted(required_reviews=2, priority=900)
    adjudication = _disagree(queue, legal, policy_version, make_user)

    assert adjudication.queue.slug != ReviewQueue.ADJUDICATION_SLUG
    assert set(adjudication.queue.allowed_groups.all()) == {legal}
    outsider = make_user("moderator")
    client = _signed_in(outsider)
    assert client.get(reverse("moderation:video_detail", args=[adjudication.decision.video_id])).status_code == 404
    assert client.get(reverse("moderation:review_task", args=[adjudication.pk])).status_code == 404
    default = ReviewQueue.objects.get(slug=ReviewQueue.ADJUDICATION_SLUG)
    assert review_claim_next(user=outsider, queue=default) is None

    adjudicator = make_user("moderator")
    adjudicator.groups.add(legal)
    assert review_claim_next(user=adjudicator, queue=adjudication.queue).pk == adjudication.pk
    screen = _signed_in(adjudicator).get(reverse("moderation:review_task", args=[adjudication.pk])).content.decode()
    assert "FIRST-NOTE" in screen and "SECOND-NOTE" in screen and f"(“{SECRET}”)" in screen


def test_an_adjudicator_outside_the_origin_queues_groups_reads_another_queue_on_the_earlier_verdicts(
    policy_version, make_user
) -> None:
    """The same rule on the adjudication screen's earlier verdicts: an adjudication queue an admin named, open to all,
    takes a restricted queue's disagreements (their choice, as an open senior queue is); each verdict named the
    restricted queue it was given in. It says "another queue" now to who may not see that queue."""
    queue, legal = _restricted(required_reviews=2, priority=900)
    queue.adjudication_queue = ReviewQueue.objects.create(
        name="Open adjudication", slug="open-adjudication-9", routes_new_decisions=False, priority=950
    )
    queue.save(update_fields=["adjudication_queue"])
    adjudication = _disagree(queue, legal, policy_version, make_user)
    assert adjudication.queue_id == queue.adjudication_queue.pk

    outsider = make_user("moderator")
    assert review_claim_next(user=outsider, queue=queue.adjudication_queue).pk == adjudication.pk
    screen = _signed_in(outsider).get(reverse("moderation:review_task", args=[adjudication.pk])).content.decode()
    start = screen.index('id="prior-reviews"')
    earlier = screen[start : screen.index("</section>", start)]
    assert "FIRST-NOTE" in earlier and "(another queue)" in earlier
    assert SECRET not in screen


# --- sign-in: an IPv6 client -----------------------------------------------------------------------------------------


def test_wrong_passwords_from_one_ipv6_64_count_together_not_per_address(make_user, settings) -> None:
    """Finding: the sign-in counts were kept per address. An IPv6 host is given a whole /64 and may send from any
    address in it, so each new address started both counts afresh: 14 wrong passwords for one account from 14
    addresses of one /64 with SIGNIN_FAILURES_PER_ADDRESS=3 were all checked (no limit on guessing one account's
    password from one host). The counts are per /64 now, as the CSP collector's rate is."""
    settings.SIGNIN_FAILURES_PER_ADDRESS = 3
    user = make_user("moderator")
    prefix = f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    paused = []
    for n in range(1, 7):
        client = Client(REMOTE_ADDR=f"{prefix}::{n:x}")
        answer = client.post(reverse("login"), {"username": user.username, "password": "wrong"})
        paused.append("sign-in is paused" in answer.content.decode())
    assert paused == [False, False, False, True, True, True]
    # Another /64 is another client.
    elsewhere = Client(REMOTE_ADDR=f"2001:db8:{uuid.uuid4().hex[:4]}:1::1")
    answer = elsewhere.post(reverse("login"), {"username": user.username, "password": "wrong"})
    assert "sign-in is paused" not in answer.content.decode()


# --- a new API token's key: held for the next page, and gone -------------------------------------------------------


@pytest.mark.parametrize("gone", ["expired", "redis down"])
def test_a_new_keys_page_says_when_the_key_held_for_it_is_gone(make_user, settings, gone: str) -> None:
    """Finding: a new API token's key waits sealed in Redis for the page after the redirect (2 minutes). When it was
    gone by then (the redirect followed late, another tab's load took it, Redis down between the post and the page),
    the page said nothing: it read as though no key had been made, while a token was made and its key lost. It says
    so now, and to rotate; a plain load of the page (nothing held) says nothing."""
    from workbench.redis_client import redis_for
    from workbench.show_once import _redis_key

    client = _signed_in(make_user("moderator"))
    page = reverse("api-token-page")
    assert "new-token-lost" not in client.get(page).content.decode()
    made = client.post(page, {"action": "create"})
    assert made.status_code == 302
    if gone == "expired":
        redis_for(alias="shared").delete(_redis_key(client.session["api_token_once"]["handle"]))
    else:
        settings.CACHES = {
            **settings.CACHES,
            "shared": {**settings.REDIS_SHARED_CACHE, "LOCATION": "redis://127.0.0.1:9/0"},  # the discard port
        }
    shown = client.get(made["Location"])
    assert shown.status_code == 200
    html = shown.content.decode()
    assert 'id="new-token-lost"' in html and "rotate the token for a key you can copy" in html
    assert 'id="api-token-key"' not in html
    assert "new-token-lost" not in client.get(page).content.decode()  # said once: nothing is held any more


# --- a Redis that does not answer -----------------------------------------------------------------------------------


@pytest.fixture
def redis_that_never_answers(settings):  # type: ignore[no-untyped-def]
    """The shared caches pointed at a server that takes connections and never answers (a hung or swapping Redis, a
    partition dropping packets): unlike a refused connection, nothing fails until a timeout."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(128)
    hung = {**settings.REDIS_SHARED_CACHE, "LOCATION": f"redis://127.0.0.1:{silent.getsockname()[1]}/0"}
    settings.CACHES = {**settings.CACHES, "throttle": hung, "shared": hung}
    yield
    silent.close()


def test_a_redis_that_never_answers_costs_a_request_at_most_a_second_not_five_each_call(
    make_user, redis_that_never_answers
) -> None:
    """Finding: with Redis hung (it takes the connection and never answers) every call waited redis-py's default 5 s:
    a sign-in took 10.7 s, every API call and every page with queue counts 5 s more, before the rate counts were
    "skipped, Redis unreachable". A web worker then served one request each 5 s: the site was as good as down,
    where the rate limits promise to keep serving. Each call now waits at most 1 s (the caches' OPTIONS), and a
    server that timed out is left alone by that process for UNANSWERED_PAUSE_SECONDS."""
    user = make_user("moderator")
    client = Client()
    began = time.monotonic()
    signed_in = client.post(reverse("login"), {"username": user.username, "password": "pw-test-123"})
    signin_took = time.monotonic() - began
    assert signed_in.status_code == 302 and signin_took < 4, signin_took
    for url in ("/api/videos/", reverse("home"), reverse("moderation:queue")):
        began = time.monotonic()
        assert client.get(url).status_code == 200
        took = time.monotonic() - began
        assert took < 2.5, (url, took)


# --- ids typed as digits Python reads and int() refuses --------------------------------------------------------------


@pytest.mark.parametrize("typed", ["²", "9" * 5000])
def test_an_id_of_digits_int_refuses_is_no_id_not_a_500(make_user, policy_version, typed: str) -> None:
    """Finding: the tag type-ahead's ``video``, the policy page's ``model_version`` and the admin's search of
    videos, decisions and review items took a value as an id when ``str.isdigit()`` was true: it is for "²" (then
    ``int()`` refuses it) and for 5,000 nines (past ``int()``'s 4,300 digits): each was a 500. They read ids through
    ``row_id`` now, as the API does: no id, the page as without one."""
    moderator = Client()
    moderator.force_login(make_user("moderator"))
    searched = moderator.get(reverse("moderation:tag_search"), {"q": "ab", "video": typed})
    assert searched.status_code == 200
    policy = moderator.get(
        reverse("moderation:policy_detail", args=[policy_version.policy_id]), {"model_version": typed}
    )
    assert policy.status_code == 200

    admin = make_user("admin")
    admin.is_staff = admin.is_superuser = True
    admin.save(update_fields=["is_staff", "is_superuser"])
    staff = Client()
    staff.force_login(admin)
    for model in ("video", "decision", "reviewtask"):
        assert staff.get(f"/admin/moderation/{model}/", {"q": typed}).status_code == 200


# --- a webhook endpoint's Disable button -----------------------------------------------------------------------------


def test_disable_on_a_page_drawn_before_the_endpoint_disabled_itself_does_not_enable_it(make_user, settings) -> None:
    """Finding: the endpoint page's button posted a bare "toggle": whatever the endpoint's state then, it flipped it.
    An admin who clicked Disable on a page drawn before the endpoint disabled itself (its failures), or whose click
    was sent twice, or another admin's meanwhile, enabled it again, and its held deliveries went out to the receiver
    they meant to cut off, recorded as "webhook.enable" by them. The button says which way now (``to``), and one
    already so is left as it is, saying so."""
    from moderation.integrations.models import WebhookEndpoint
    from moderation.integrations.services import integration_create
    from moderation.integrations.webhooks import webhook_endpoint_create, webhook_endpoint_disable
    from moderation.review.models import AuditEvent

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    integration, _token = integration_create(name=f"platform-{uuid.uuid4().hex[:6]}")
    endpoint, _secret = webhook_endpoint_create(
        integration=integration, url="http://10.1.2.3/hook", event_types=["model.promoted"]
    )
    admin = _signed_in(make_user("admin"))
    page = admin.get(reverse("moderation:webhook_endpoint", args=[endpoint.pk])).content.decode()
    assert 'name="to" value="off"' in page
    webhook_endpoint_disable(endpoint=endpoint, reason="10 failed deliveries in a row", by=None)  # meanwhile

    clicked = admin.post(reverse("moderation:webhook_endpoint_toggle", args=[endpoint.pk]), {"to": "off"}, follow=True)
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
    assert "was disabled (10 failed deliveries in a row) already" in clicked.content.decode()
    assert not AuditEvent.objects.filter(object_type="webhookendpoint", action="webhook.enable").exists()

    bare = admin.post(reverse("moderation:webhook_endpoint_toggle", args=[endpoint.pk]), follow=True)
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
    assert "nothing changed" in bare.content.decode()
    admin.post(reverse("moderation:webhook_endpoint_toggle", args=[endpoint.pk]), {"to": "on"})
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).is_active


def test_a_restricted_queues_disagreement_handed_to_the_open_queue_before_is_moved_to_its_own(
    policy_version, make_user
) -> None:
    """The data of the disagreement finding: items handed to the open "Adjudication" queue before the fix (any
    status: a decided one opens the video too) move to their restricted queue's own adjudication queue (moderation
    0069); an open queue's disagreement stays where it is."""
    import importlib

    from django.apps import apps

    from moderation.review.services import review_queue_adjudication_default

    restricted, legal = _restricted(required_reviews=2, priority=900)
    leaked = _disagree(restricted, legal, policy_version, make_user)
    default = review_queue_adjudication_default()
    ReviewTask.objects.filter(pk=leaked.pk).update(queue=default)  # where it went before the fix
    ReviewQueue.objects.filter(pk=restricted.pk).update(routes_new_decisions=False)  # the next item: the open queue's
    open_queue = ReviewQueue.objects.create(name="Open pairs", slug="open-pairs-9", required_reviews=2, priority=800)
    stays = _disagree(open_queue, Group.objects.create(name="anyone-9"), policy_version, make_user)
    assert stays.queue_id == default.pk
    outsider = make_user("moderator")
    video_page = reverse("moderation:video_detail", args=[leaked.decision.video_id])
    assert _signed_in(outsider).get(video_page).status_code == 200  # the leak

    migration = importlib.import_module("moderation.migrations.0069_restricted_disagreements_own_adjudication")
    migration.move_restricted_disagreements(apps, None)

    moved = ReviewTask.objects.select_related("queue").get(pk=leaked.pk)
    assert moved.queue.slug == f"adjudication-{restricted.pk}" and set(moved.queue.allowed_groups.all()) == {legal}
    assert ReviewTask.objects.get(pk=stays.pk).queue_id == default.pk
    assert _signed_in(outsider).get(video_page).status_code == 404
