"""A queue may escalate to a senior queue restricted to groups the escalating moderator is not of. The review screen's
button, the confirmation, the item opened again and the queue's page all named it ("escalated to “Legal
counsel”"): a queue that moderator may not see, by name. Now they say "a senior queue" to them; its groups' members
and admins still read its name."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from moderation.review.models import ReviewQueue, ReviewTask
from moderation.review.services import review_tasks_create_for_decision
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db

SECRET = "Legal counsel"


def _pages_of_one_escalation(client: Client, first_line: ReviewQueue, policy_version) -> str:  # type: ignore[no-untyped-def]
    """Everything one moderator reads while escalating an item: the item's screen, the confirmation, the item opened
    again, the queue's page."""
    [task] = review_tasks_create_for_decision(decision=DecisionFactory(policy_version=policy_version))
    client.post(reverse("moderation:queue_claim_next", args=[first_line.slug]))
    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert 'data-hotkey="e"' in screen
    done = client.post(reverse("moderation:review_escalate", args=[task.pk]), {"reason": "needs a lawyer"}, follow=True)
    assert ReviewTask.objects.get(pk=task.pk).status == ReviewTask.Status.ESCALATED
    again = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    queue_page = client.get(reverse("moderation:queue_detail", args=[first_line.slug])).content.decode()
    return "\n".join([screen, done.content.decode(), again, queue_page])


def test_escalating_to_a_restricted_senior_queue_does_not_name_it_to_a_moderator_outside_its_groups(
    policy_version, make_user
):
    legal = Group.objects.create(name="legal")
    senior = ReviewQueue.objects.create(name=SECRET, slug="legal-counsel", routes_new_decisions=False)
    senior.allowed_groups.add(legal)
    first_line = ReviewQueue.objects.create(name="First line", slug="first-line", escalation_queue=senior)

    outsider = Client()
    outsider.force_login(make_user("moderator"))
    said = _pages_of_one_escalation(outsider, first_line, policy_version)
    assert SECRET not in said and "legal-counsel" not in said
    assert "Escalate to a senior queue" in said and "escalated to a senior queue." in said
    assert "This item was escalated to a senior queue; it is decided there now" in said
    assert "escalates to a senior queue" in said

    member = make_user("moderator")
    member.groups.add(legal)
    insider = Client()
    insider.force_login(member)
    said = _pages_of_one_escalation(insider, first_line, policy_version)
    assert f"Escalate to “{SECRET}”" in said and f"escalated to “{SECRET}”." in said
    assert f"This item was escalated to “{SECRET}”" in said and f"escalates to “{SECRET}”" in said
