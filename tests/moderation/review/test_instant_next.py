"""Instant next, server side: the screen fetched ahead, and the decision sent in the background
(JSON answers, the item that comes back on refusal, a resend that records nothing twice)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from moderation.feedback.models import FeedbackAggregate
from moderation.review.models import Review, ReviewTask
from moderation.review.services import review_claim_next

pytestmark = pytest.mark.django_db
BACKGROUND = {"HTTP_X_REVIEW_BACKGROUND": "1"}


def _login(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_the_screen_names_the_item_ahead_and_its_prefetch_has_no_ahead_of_its_own(make_task, make_user):
    first = make_task(priority=3)
    second = make_task(priority=2, decision__video__title="SECOND-ITEM")
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))  # claims the first and, ahead, the second

    page = client.get(reverse("moderation:review_task", args=[first.pk])).content.decode()
    ahead_url = reverse("moderation:review_task", args=[second.pk]) + "?prefetch=1"
    assert f'data-ahead="{second.pk}" data-ahead-url="{ahead_url}"' in page

    fragment = client.get(ahead_url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment and "SECOND-ITEM" in fragment
    assert f'id="review-screen" data-task="{second.pk}"' in fragment
    assert "data-ahead=" not in fragment  # the decision's answer names the one after it


def test_a_background_decision_answers_json_with_the_next_item_and_claims_the_one_after(make_task, make_user):
    first, second, third = make_task(priority=3), make_task(priority=2), make_task(priority=1)
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))

    resp = client.post(reverse("moderation:review_submit", args=[first.pk]), {"verdict": "approve"}, **BACKGROUND)

    assert resp.status_code == 200 and resp["Content-Type"] == "application/json"
    data = resp.json()
    assert data["ok"] and data["task"] == first.pk and f"item #{first.pk}" in data["recorded"]
    assert (data["next"], data["ahead"]) == (second.pk, third.pk)
    assert data["ahead_url"] == reverse("moderation:review_task", args=[third.pk]) + "?prefetch=1"
    third.refresh_from_db()
    assert third.claimed_by == alice and third.status == ReviewTask.Status.CLAIMED
    # No message is left for a later full page: the screen has already moved on.
    assert "Recorded" not in client.get(reverse("moderation:queue")).content.decode()


def test_the_last_background_decision_is_confirmed_on_the_queue_list_it_lands_on(make_task, make_user):
    """Walked: deciding the last item sent the screen to the queue list, which said only "Queue is empty." — the
    "Recorded …" line every other item gets was lost with the page."""
    only = make_task()
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))
    data = client.post(reverse("moderation:review_submit", args=[only.pk]), {"verdict": "approve"}, **BACKGROUND).json()
    assert data["ok"] and data["next"] is None
    page = client.get(reverse("moderation:queue")).content.decode()
    # In words (hwalk15): it read "Recorded approve model verdict (正向, severity none) for item #N."
    assert f"Recorded for item #{only.pk}: approved the model verdict (正向)." in page
    assert "Queue is empty." in page


def test_a_resent_decision_records_once_and_a_different_one_is_refused(make_task, make_user):
    first, _second = make_task(priority=2), make_task(priority=1)
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))
    url = reverse("moderation:review_submit", args=[first.pk])
    form = {"verdict": "override", "label": "色情低俗", "severity": "low"}

    assert client.post(url, form, **BACKGROUND).json()["ok"]
    again = client.post(url, form, **BACKGROUND).json()  # the answer was lost; the browser retries
    assert again["ok"] and Review.objects.filter(task=first).count() == 1

    other = client.post(url, {"verdict": "approve"}, **BACKGROUND)
    assert other.status_code == 409
    assert other.json()["error"].startswith("You already decided this item")  # what was recorded is named (hwalk15)
    assert Review.objects.get(task=first).verdict == "override"


def test_a_refused_background_decision_says_why_and_whether_the_item_is_still_yours(make_task, make_user):
    task = make_task(decision__label="色情低俗", decision__is_violation=True)
    alice = make_user("moderator")
    client = _login(alice)
    review_claim_next(user=alice)
    url = reverse("moderation:review_submit", args=[task.pk])

    bad = client.post(url, {"verdict": "approve", "severity": "none"}, **BACKGROUND)
    assert bad.status_code == 409
    assert bad.json() == {
        "ok": False,
        "task": task.pk,
        "error": bad.json()["error"],
        "still_yours": True,
        "decided_by_you": False,
    }
    assert "choose its severity" in bad.json()["error"] and not Review.objects.exists()

    ReviewTask.objects.filter(pk=task.pk).update(claimed_by=make_user("moderator"))  # taken after a lapse
    taken = client.post(url, {"verdict": "approve", "severity": "low"}, **BACKGROUND).json()
    assert taken["still_yours"] is False and "another reviewer" in taken["error"]


def test_feedback_after_the_decision_re_derives_the_baseline_stage_4(make_task, make_user):
    from django.utils import timezone

    task = make_task(
        decision__backend="evidence_baseline",
        decision__cot=[
            {"key": "user_feedback", "title": "User feedback", "text": "No user-feedback events yet.", "evidence": []},
            {"key": "final_judgment", "title": "Final judgment", "text": "Non-violative.", "evidence": []},
        ],
    )
    alice = make_user("moderator")
    review_claim_next(user=alice)
    url = reverse("moderation:review_task", args=[task.pk])
    assert "re-derived" not in _login(alice).get(url).content.decode()

    FeedbackAggregate.objects.create(
        video=task.decision.video, views=100, reports=14, appeals=1, appeals_pending=1, last_event_at=timezone.now()
    )
    html = _login(alice).get(url).content.decode()

    assert "re-derived from the feedback on record now" in html
    assert "14 reports (report rate 14.0%)" in html and "Appeals: 1" in html
    assert "No user-feedback events yet." in html  # the original, kept beside it
    assert "0 prompt + 0 output tokens" not in html  # the baseline has no latency or token cost


def test_an_over_long_note_is_refused_with_the_limit_and_the_item_stays_yours(make_task, make_user):
    """A 200,000-character note was stored as it was; the screen's background send (a keepalive request,
    at most 64 KiB) failed before leaving the browser and said "the server could not be reached"."""
    from moderation.review.services import REVIEW_NOTE_MAX_CHARS

    task = make_task()
    alice = make_user("moderator")
    client = _login(alice)
    client.post(reverse("moderation:claim_next"))
    page = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert f'name="note" rows="1" maxlength="{REVIEW_NOTE_MAX_CHARS}"' in page

    url = reverse("moderation:review_submit", args=[task.pk])
    resp = client.post(url, {"verdict": "approve", "note": "长" * (REVIEW_NOTE_MAX_CHARS + 1)}, **BACKGROUND)

    data = resp.json()
    assert resp.status_code == 409 and not data["ok"] and data["still_yours"]
    assert f"a note holds at most {REVIEW_NOTE_MAX_CHARS:,}" in data["error"] and not Review.objects.exists()
    ok = client.post(url, {"verdict": "approve", "note": "长" * REVIEW_NOTE_MAX_CHARS}, **BACKGROUND)
    assert ok.json()["ok"] and len(Review.objects.get().note) == REVIEW_NOTE_MAX_CHARS


def test_the_queue_pages_name_the_item_claim_next_gives_back_not_the_one_claimed_ahead(make_task, make_user):
    """Walked at 1440x900: with the item on screen and the one claimed ahead both held, the queue list said "You hold
    video <the item ahead> … continue", while its note (and "Claim next") gave back the item on screen."""
    first = make_task(priority=3, decision__video__title="ON-SCREEN")
    second = make_task(priority=2, decision__video__title="AHEAD")
    client = _login(make_user("moderator"))
    client.post(reverse("moderation:claim_next"))  # claims the first and, ahead, the second
    assert ReviewTask.objects.filter(pk__in=[first.pk, second.pk], status="claimed").count() == 2

    first_url = reverse("moderation:review_task", args=[first.pk])
    page = client.get(reverse("moderation:queue")).content.decode()
    held = page[page.index(f'id="held-item-{first.queue.slug}"') :].split("</p>")[0]
    assert (
        f"video #{first.decision.video_id}</span> “ON-SCREEN”" in held and f'<a href="{first_url}">continue</a>' in held
    )
    response = client.post(reverse("moderation:claim_next"))
    assert response["Location"] == first_url  # what the line says


def test_a_verdict_sent_from_a_second_tab_after_the_first_decided_names_what_was_recorded(make_task, make_user):
    """Walked in two tabs at 1440x900 (hwalk15): the item approved in one tab, then overridden in the other, came back
    with "Already reviewed: this item has a recorded verdict. Your claim on this item is lost", as if another
    reviewer had taken it. It says the reviewer decided it already, when, and what was recorded."""
    first = make_task(priority=2, decision__label="夸大商品功效", decision__is_violation=True)
    make_task(priority=1)
    alice = make_user("moderator")
    tab = _login(alice)
    tab.post(reverse("moderation:claim_next"))
    url = reverse("moderation:review_submit", args=[first.pk])
    assert tab.post(url, {"verdict": "approve", "severity": "medium"}, **BACKGROUND).json()["ok"]

    other_tab = tab.post(url, {"verdict": "override", "label": "正向"}, **BACKGROUND)
    data = other_tab.json()
    assert other_tab.status_code == 409 and not data["ok"] and data["decided_by_you"] and not data["still_yours"]
    assert data["error"].startswith("You already decided this item at ")
    assert "approve model verdict (夸大商品功效, severity medium). Nothing more was recorded." in data["error"]
    assert "Already reviewed" not in data["error"]
    # The page submit (no script) says the same above the screen it lands on.
    page = tab.post(url, {"verdict": "override", "label": "正向"}, follow=True).content.decode()
    assert "You already decided this item at" in page and "Already reviewed" not in page
    assert Review.objects.get(task=first).verdict == "approve"
