"""The places invisible bidi controls were still shown from, after titles, names and free text lost them
(``workbench.text.shown_text``): the audit log's payloads as displayed, taxonomies imported before names were cleaned,
review-queue names typed in the admin, and reviewers' skip reasons. "refund \\u202e0011 2233" displays as another
number; each is now shown (the append-only log) or stored (the rest, with a data migration for what is there) without
them."""

from __future__ import annotations

from importlib import import_module
from typing import Any

import pytest
from django.apps import apps
from django.forms.models import model_to_dict
from django.test import Client
from django.urls import reverse

from moderation.review.models import AuditEvent, ReviewQueue, ReviewSkip, ReviewTask
from tests.factories import ReviewTaskFactory, UserFactory

pytestmark = pytest.mark.django_db

CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
SPOOF = f"Call \u202e0011 2233\u202c now{CONTROLS}"
CLEAN = "Call 0011 2233 now"


def _no_controls(text: str) -> bool:
    return not any(c in text for c in CONTROLS)


def test_an_audit_events_payload_is_shown_without_bidi_controls(policy_version: Any) -> None:
    """The log refuses every UPDATE, so an event recorded before reasons were stored clean keeps its controls: the
    admin's event page and the senior reviewer's "escalated by … because …" show it cleaned."""
    from moderation.review.selectors import review_escalations_into
    from moderation.review.services import audit_event_record

    junior = ReviewQueue.objects.create(slug="junior-bidi", name="Junior")
    senior = ReviewQueue.objects.create(slug="senior-bidi", name="Senior", routes_new_decisions=False)
    junior.escalation_queue = senior
    junior.save()
    escalated = ReviewTaskFactory(
        decision__policy_version=policy_version, queue=junior, status=ReviewTask.Status.ESCALATED
    )
    into = ReviewTaskFactory(decision=escalated.decision, queue=senior)
    event = audit_event_record(
        actor=UserFactory(role="moderator"), action="escalate", obj=escalated, payload={"reason": SPOOF, SPOOF: [SPOOF]}
    )
    assert event.payload["reason"] == SPOOF  # stored as it was written: the log is append-only

    [shown] = review_escalations_into(task=into, user=UserFactory(is_superuser=True))
    assert shown["reason"] == CLEAN

    auditor = Client()
    auditor.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = auditor.get(reverse("admin:moderation_auditevent_change", args=[event.pk])).content.decode()
    assert CLEAN in page and _no_controls(page)


def test_a_queue_name_and_a_skip_reason_are_stored_without_bidi_controls(policy_version: Any) -> None:
    from moderation.review.admin import ReviewQueueAdminForm, ReviewSkipAdminForm
    from moderation.review.selectors import SKIP_REASONS
    from moderation.review.services import review_claim_next, review_queue_default, review_skip

    queue = review_queue_default()
    data = {**model_to_dict(queue), "labels": "[]", "name": f"Mi\u202enors{CONTROLS}", "description": SPOOF}
    form = ReviewQueueAdminForm(data=data, instance=queue)
    assert form.is_valid(), form.errors
    saved = form.save()
    assert (saved.name, saved.description) == ("Minors", CLEAN)

    reviewer = UserFactory(role="moderator")
    ReviewTaskFactory(decision__policy_version=policy_version)
    ReviewTaskFactory(decision__policy_version=policy_version)
    held = review_claim_next(user=reviewer, queue=queue)
    assert held is not None
    # One of the listed reasons with a mark pasted into it is that reason (it was refused, or stored as typed).
    assert review_skip(task=held, user=reviewer, reason=f"\u200f{SKIP_REASONS[2]}\u202c") is not None
    assert ReviewSkip.objects.get(task=held).reason == SKIP_REASONS[2]
    assert AuditEvent.objects.get(action="skip").payload["reason"] == SKIP_REASONS[2]

    skip = ReviewSkip.objects.get(task=held)
    form = ReviewSkipAdminForm(data={**model_to_dict(skip), "reason": SPOOF}, instance=skip)
    assert form.is_valid(), form.errors
    assert form.save().reason == CLEAN


def test_queue_names_skip_reasons_and_taxonomies_stored_before_lose_their_bidi_controls_once(
    policy_version: Any,
) -> None:
    from moderation.policies.models import PolicyVersion

    migration = import_module("moderation.migrations.0061_queue_names_skips_taxonomies_without_bidi_controls")
    queue = ReviewQueue.objects.create(slug="old-bidi", name="Old \u202equeue", description=SPOOF)
    plain = ReviewQueue.objects.create(slug="hebrew", name="שלום", description="视频")
    task = ReviewTaskFactory(decision__policy_version=policy_version, queue=queue)
    skip = ReviewSkip.objects.create(task=task, user=UserFactory(role="moderator"), reason=f"Busy{CONTROLS}")
    taxonomy = policy_version.taxonomy
    key = taxonomy[0]["tags"][0]["key"]
    taxonomy[0]["name"] = f"Fraud{CONTROLS}"
    taxonomy[0]["tags"][0]["name"] = "Fake \u202eprize"
    taxonomy[0]["tags"][0]["criteria"] = [SPOOF, "fine"]
    PolicyVersion.objects.filter(pk=policy_version.pk).update(taxonomy=taxonomy)

    migration.strip_bidi_controls(apps, None)

    queue.refresh_from_db()
    assert (queue.name, queue.description) == ("Old queue", CLEAN)
    assert ReviewQueue.objects.filter(pk=plain.pk, name="שלום", description="视频").exists()
    assert ReviewSkip.objects.get(pk=skip.pk).reason == "Busy"
    cleaned = PolicyVersion.objects.get(pk=policy_version.pk).taxonomy
    assert cleaned[0]["name"] == "Fraud"
    assert cleaned[0]["tags"][0]["name"] == "Fake prize" and cleaned[0]["tags"][0]["key"] == key
    assert cleaned[0]["tags"][0]["criteria"] == [CLEAN, "fine"]
    assert cleaned[1:] == taxonomy[1:]
