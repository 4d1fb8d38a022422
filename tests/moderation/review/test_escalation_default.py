"""The embedded default's escalation path (hui20): after ``bootstrap`` (every ``./run.sh``) the default queue escalates
to "Senior review"; before, it had no senior queue, so no item could be escalated until an admin made one. The
moderator who escalated an item never claims it there (four eyes), whichever way they ask."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from moderation.review.models import Review, ReviewQueue, ReviewTask
from moderation.review.services import review_claim_next, review_queue_default, review_tasks_create_for_decision
from tests.factories import DecisionFactory

pytestmark = pytest.mark.django_db


def _seed() -> None:
    call_command("seed_queues", stdout=StringIO())


def test_bootstrap_gives_the_default_queue_a_senior_queue_once_and_leaves_an_admins_choice() -> None:
    call_command("bootstrap", stdout=StringIO())
    default = review_queue_default()
    senior = default.escalation_queue
    assert senior is not None and senior.slug == ReviewQueue.SENIOR_SLUG and senior.name == "Senior review"
    assert not senior.routes_new_decisions and not senior.allowed_groups.exists()  # only handed items; every reviewer
    _seed()  # every start runs it again: nothing new
    assert ReviewQueue.objects.filter(slug=ReviewQueue.SENIOR_SLUG).count() == 1

    ReviewQueue.objects.filter(pk=default.pk).update(escalation_queue=None)  # an admin unlinked it: it stays so
    _seed()
    assert review_queue_default().escalation_queue_id is None

    ReviewQueue.objects.filter(slug=ReviewQueue.SENIOR_SLUG).delete()
    legal = ReviewQueue.objects.create(name="Legal", slug="legal", routes_new_decisions=False)
    ReviewQueue.objects.filter(pk=default.pk).update(escalation_queue=legal)  # an admin's own senior queue
    _seed()
    assert review_queue_default().escalation_queue_id == legal.pk
    assert not ReviewQueue.objects.filter(slug=ReviewQueue.SENIOR_SLUG).exists()


def test_who_escalated_an_item_never_claims_it_from_senior_review(policy_version, make_user) -> None:  # type: ignore[no-untyped-def]
    _seed()
    default = review_queue_default()
    senior = ReviewQueue.objects.get(slug=ReviewQueue.SENIOR_SLUG)
    [task] = review_tasks_create_for_decision(decision=DecisionFactory(policy_version=policy_version))
    assert task.queue_id == default.pk  # new decisions go to the default queue, never straight to the senior one
    escalator, senior_reviewer = make_user("moderator"), make_user("moderator")
    client = Client()
    client.force_login(escalator)

    client.post(reverse("moderation:queue_claim_next", args=[default.slug]))
    screen = client.get(reverse("moderation:review_task", args=[task.pk])).content.decode()
    assert "Escalate to “Senior review”" in screen
    client.post(reverse("moderation:review_escalate", args=[task.pk]), {"reason": "Needs a senior decision"})
    handed = ReviewTask.objects.get(queue=senior, decision=task.decision)
    assert ReviewTask.objects.get(pk=task.pk).status == ReviewTask.Status.ESCALATED
    assert handed.status == ReviewTask.Status.PENDING

    # Not from the queue's "Claim next", the service, nor once another reviewer's claim on it has lapsed.
    client.post(reverse("moderation:queue_claim_next", args=[senior.slug]))
    assert review_claim_next(user=escalator, queue=senior) is None
    handed.refresh_from_db()
    assert handed.status == ReviewTask.Status.PENDING and handed.claimed_by_id is None
    assert review_claim_next(user=senior_reviewer, queue=senior) == handed  # another reviewer decides it
    ReviewTask.objects.filter(pk=handed.pk).update(lease_expires_at=timezone.now() - timezone.timedelta(minutes=1))
    assert review_claim_next(user=escalator, queue=senior) is None
    # Nor a verdict sent straight to the item's address.
    client.post(reverse("moderation:review_submit", args=[handed.pk]), {"verdict": "approve"})
    assert not Review.objects.filter(task=handed).exists()
    handed.refresh_from_db()
    assert handed.claimed_by_id == senior_reviewer.pk


def test_the_admins_queue_list_says_where_each_queue_escalates(make_user) -> None:  # type: ignore[no-untyped-def]
    """Setting up a senior queue in the admin was done blind: its list did not say which queue takes new decisions
    nor where each escalates."""
    _seed()
    admin = Client()
    admin.force_login(make_user("admin", is_staff=True, is_superuser=True))
    listed = admin.get("/admin/moderation/reviewqueue/").content.decode()
    assert "Escalation queue" in listed and "Routes new decisions" in listed
    default_row = listed.split(">Default</a>", 1)[1].split("</tr>", 1)[0]
    assert ">Senior review<" in default_row or "Senior review" in default_row
