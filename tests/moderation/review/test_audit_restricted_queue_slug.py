"""An escalation to a senior queue restricted to groups the moderator is not of is "a senior queue" on every screen
they read (``review_queue_named_for``), but the audit log kept its slug in the event's payload (``to_queue``, and
``queue`` on the senior item's claim and verdict). The log is not admins' only: a staff member given
``view_auditevent`` (an auditor) reads every event about a video open to them, and an escalated video stays open
to the first line. Its page now reads "(a restricted queue)" for a queue that auditor may not see; those of its
groups, and those who may list every queue in the admin (the admin role, superusers), read the slug."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.urls import reverse

from moderation.review.models import AuditEvent, ReviewQueue
from moderation.review.selectors import RESTRICTED_QUEUE_SHOWN
from moderation.review.services import review_claim_next, review_escalate

pytestmark = pytest.mark.django_db

SLUG = "legal-counsel"


def _page(user, event: AuditEvent) -> str:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    response = client.get(reverse("admin:moderation_auditevent_change", args=[event.pk]))
    assert response.status_code == 200, (user, response.status_code)
    return response.content.decode()


def test_an_auditor_outside_the_senior_queues_groups_does_not_read_its_slug(make_task, make_user) -> None:  # type: ignore[no-untyped-def]
    legal = Group.objects.create(name="legal")
    senior = ReviewQueue.objects.create(name="Legal counsel", slug=SLUG, routes_new_decisions=False)
    senior.allowed_groups.add(legal)
    first_line = ReviewQueue.objects.create(name="First line", slug="first-line", escalation_queue=senior)
    task = make_task(queue=first_line)
    moderator = make_user("moderator")
    assert review_claim_next(user=moderator, queue=first_line).pk == task.pk
    handed = review_escalate(task=task, user=moderator, reason="needs a lawyer")
    counsel = make_user("moderator")
    counsel.groups.add(legal)
    assert review_claim_next(user=counsel, queue=senior).pk == handed.pk
    escalated = AuditEvent.objects.get(action="escalate")
    claimed = AuditEvent.objects.get(action="claim", object_id=str(handed.pk))
    assert escalated.payload["to_queue"] == SLUG and claimed.payload["queue"] == SLUG  # the log keeps it

    view = Permission.objects.get(codename="view_auditevent")
    auditor = make_user(None, is_staff=True)
    member = make_user(None, is_staff=True)
    member.groups.add(legal)
    for user in (auditor, member):
        user.user_permissions.add(view)
    admin_role = make_user("admin", is_staff=True)
    admin_role.user_permissions.add(view)
    superuser = make_user(None, is_staff=True, is_superuser=True)

    for event in (escalated, claimed):
        outside = _page(auditor, event)
        assert SLUG not in outside and RESTRICTED_QUEUE_SHOWN in outside, event.action
        for insider in (member, admin_role, superuser):
            assert SLUG in _page(insider, event), (insider, event.action)
    shown = _page(auditor, escalated)
    assert "first-line" in shown and "needs a lawyer" in shown  # the rest of the event as it was
    escalated.refresh_from_db()
    assert escalated.payload["to_queue"] == SLUG  # shown without it, never changed


def test_a_hidden_slug_is_replaced_as_a_word_in_any_text_of_the_payload() -> None:
    from moderation.review.selectors import audit_payload_shown_to

    payload = {
        "queues": ["first-line", SLUG],
        "reason": f"queue {SLUG} edited after routing",
        "nested": [{"to_queue": SLUG}],
        "other": f"{SLUG}-archive and not-{SLUG}",
        "n": 3,
    }
    shown = audit_payload_shown_to(payload, hidden=frozenset({SLUG}))
    assert shown == {
        "queues": ["first-line", RESTRICTED_QUEUE_SHOWN],
        "reason": f"queue {RESTRICTED_QUEUE_SHOWN} edited after routing",
        "nested": [{"to_queue": RESTRICTED_QUEUE_SHOWN}],
        "other": f"{SLUG}-archive and not-{SLUG}",  # another slug that contains it is another queue's
        "n": 3,
    }
    assert audit_payload_shown_to(payload, hidden=frozenset()) is payload


def test_a_platforms_review_completed_event_does_not_name_a_restricted_queue(make_task, make_user) -> None:  # type: ignore[no-untyped-def]
    """The webhook's ``review.completed`` carried the queue's slug: a verdict given in the restricted senior queue
    told every platform subscribed to it that queue, which no screen names outside its groups."""
    from moderation.integrations.models import OutboxEvent
    from moderation.review.services import review_submit

    legal = Group.objects.create(name="legal")
    senior = ReviewQueue.objects.create(name="Legal counsel", slug=SLUG, routes_new_decisions=False)
    senior.allowed_groups.add(legal)
    first_line = ReviewQueue.objects.create(name="First line", slug="first-line", escalation_queue=senior)
    moderator, counsel = make_user("moderator"), make_user("moderator")
    counsel.groups.add(legal)
    escalated, plain = make_task(queue=first_line), make_task(queue=first_line)
    assert review_claim_next(user=moderator, queue=first_line).pk == escalated.pk
    handed = review_escalate(task=escalated, user=moderator, reason="needs a lawyer")
    assert review_claim_next(user=counsel, queue=senior).pk == handed.pk
    review_submit(task=handed, user=counsel, verdict="approve")
    assert review_claim_next(user=moderator, queue=first_line).pk == plain.pk
    review_submit(task=plain, user=moderator, verdict="approve")

    sent = {e.payload["decision_id"]: e.payload["queue"] for e in OutboxEvent.objects.filter(type="review.completed")}
    assert sent == {handed.decision_id: RESTRICTED_QUEUE_SHOWN, plain.decision_id: "first-line"}
    assert AuditEvent.objects.get(action="review.approve", object_id=str(handed.pk)).payload["queue"] == SLUG
