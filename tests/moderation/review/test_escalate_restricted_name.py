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


def test_a_senior_outside_the_origin_queues_groups_reads_another_queue_not_its_name(make_task, make_user):
    """The other way round: a senior queue open to all takes escalations from a queue restricted to groups a senior
    is not of. The item's "Escalated" list named that queue ("… from “Legal counsel”"); now it says "from another
    queue" to them (``review_queue_named_for``, the one rule), and the origin queue's members read its name."""
    from moderation.review.selectors import review_escalations_into
    from moderation.review.services import review_claim_next, review_escalate

    legal = Group.objects.create(name="legal")
    senior = ReviewQueue.objects.create(name="Senior", slug="senior-open", routes_new_decisions=False)
    origin = ReviewQueue.objects.create(name=SECRET, slug="legal-counsel", escalation_queue=senior)
    origin.allowed_groups.add(legal)
    member = make_user("moderator")
    member.groups.add(legal)
    task = make_task(queue=origin)
    assert review_claim_next(user=member, queue=origin).pk == task.pk
    handed = review_escalate(task=task, user=member, reason="needs a second look")

    senior_moderator = make_user("moderator")
    assert review_claim_next(user=senior_moderator, queue=senior).pk == handed.pk
    client = Client()
    client.force_login(senior_moderator)
    page = client.get(reverse("moderation:review_task", args=[handed.pk])).content.decode()
    start = page.index('id="escalations"')
    seen = page[start : page.index("</section>", start)]
    assert "needs a second look" in seen and "from another queue" in seen
    assert SECRET not in seen

    [insider] = review_escalations_into(task=handed, user=member)
    assert insider["from_queue"] == f"“{SECRET}”"
