"""The review screen's "2nd in this session" counts the items worked in this tab's session. A decision is counted by
static/review.js; an escalation and a skip are plain form posts, so the page they land on marks their message
``data-review-worked`` and workbench.js counts it by the same rule (``reviewSessionWorked``). Before, they were not
counted: after an escalation the next item still read "1st in this session"."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import resolve, reverse

from moderation.review.models import ReviewTask
from moderation.review.services import review_queue_default, review_tasks_create_for_decision
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db

WORKED = "data-review-worked"


def _worked_messages(html: str) -> int:
    return html.count(WORKED)


def _task_in(url: str) -> int:
    match = resolve(url)
    assert match.url_name == "review_task", url
    return int(match.kwargs["pk"])


def test_an_escalation_and_a_skip_count_as_items_worked_and_a_refusal_or_a_reload_does_not(  # type: ignore[no-untyped-def]
    policy_version, make_user
) -> None:
    call_command("seed_queues", stdout=StringIO())  # the default queue escalates to "Senior review"
    default = review_queue_default()
    tasks = [
        review_tasks_create_for_decision(decision=DecisionFactory(policy_version=policy_version))[0] for _ in "abc"
    ]
    assert all(t.queue_id == default.pk for t in tasks)
    client = Client()
    client.force_login(make_user("moderator"))
    resp = client.post(reverse("moderation:queue_claim_next", args=[default.slug]))
    current = ReviewTask.objects.get(pk=_task_in(resp["Location"]))

    # A refused escalation (no reason) stays on the item and counts nothing.
    resp = client.post(reverse("moderation:review_escalate", args=[current.pk]), {"reason": ""}, follow=True)
    assert resp.redirect_chain[-1][0] == reverse("moderation:review_task", args=[current.pk])
    assert _worked_messages(resp.content.decode()) == 0

    resp = client.post(
        reverse("moderation:review_escalate", args=[current.pk]), {"reason": "Needs a senior decision"}, follow=True
    )
    html = resp.content.decode()
    assert f"Item #{current.pk} escalated" in html
    assert _worked_messages(html) == 1, "an escalation is an item worked in the session"
    landed = _task_in(resp.redirect_chain[-1][0])
    assert landed != current.pk
    # The message is shown once: a reload of the next item counts nothing again.
    assert _worked_messages(client.get(reverse("moderation:review_task", args=[landed])).content.decode()) == 0

    resp = client.post(
        reverse("moderation:review_skip", args=[landed]),
        {"reason": "Not sure: let another reviewer decide"},
        follow=True,
    )
    html = resp.content.decode()
    assert f"Skipped item #{landed}" in html
    assert _worked_messages(html) == 1, "a skip is an item worked in the session"
