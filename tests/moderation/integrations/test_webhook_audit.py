"""Webhook endpoint changes are in the audit log like the integration's own (switch, token rotation): who added an
endpoint, changed its events, disabled or enabled it, or sent a delivery again, and when the sender disabled it
after failures. The signing secret is never in a payload. Real database, the Django test client, the audit log's
admin list as staff read it."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from moderation.inference.services import model_version_promote
from moderation.integrations.models import WebhookDelivery, WebhookEndpoint
from moderation.integrations.webhooks import outbox_dispatch, webhook_delivery_send, webhook_endpoint_create
from moderation.review.models import AuditEvent
from tests.factories import ModelVersionFactory, UserFactory
from tests.moderation.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db


def _endpoint_events(endpoint: WebhookEndpoint) -> list[tuple[str, str]]:
    rows = AuditEvent.objects.filter(object_type="webhookendpoint", object_id=str(endpoint.pk)).order_by("pk")
    return list(rows.values_list("action", "actor_name"))


def test_an_admins_endpoint_changes_are_audited_without_the_secret(platform, make_user, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    user = make_user("admin")
    admin = Client()
    admin.force_login(user)
    added = admin.post(
        reverse("moderation:webhook_endpoint_add", args=[platform.integration.pk]),
        {"url": "http://10.1.2.3/hook", "event_types": ["model.promoted", "decision.created"], "only_own_videos": "on"},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert added.status_code == 302
    events_url = reverse("moderation:webhook_endpoint_events", args=[endpoint.pk])
    admin.post(events_url, {"event_types": ["model.promoted"]})
    admin.post(events_url, {"event_types": ["model.promoted"]})  # the same choices again: nothing changes
    toggle = reverse("moderation:webhook_endpoint_toggle", args=[endpoint.pk])
    admin.post(toggle, {"to": "off"})  # disable
    admin.post(toggle, {"to": "on"})  # enable

    name = user.username
    assert _endpoint_events(endpoint) == [
        ("webhook.create", name),
        ("webhook.events_set", name),
        ("webhook.disable", name),
        ("webhook.enable", name),
    ]
    by_action = {
        e.action: e.payload
        for e in AuditEvent.objects.filter(object_type="webhookendpoint", object_id=str(endpoint.pk))
    }
    assert by_action["webhook.create"]["event_types"] == ["decision.created", "model.promoted"]
    assert by_action["webhook.create"]["integration"] == platform.integration.pk
    assert by_action["webhook.events_set"]["before"]["event_types"] == ["decision.created", "model.promoted"]
    assert by_action["webhook.events_set"]["only_own_videos"] is False
    assert by_action["webhook.enable"]["disabled_reason"] == f"Disabled by {name}."
    secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    assert secret.startswith("whsec_")
    assert not any(secret in json.dumps(p) or "whsec_" in json.dumps(p) for p in by_action.values())

    # Where the audit log is listed (the admin's list): the entries are there, named by action.
    auditor = Client()
    auditor.force_login(UserFactory(is_staff=True, is_superuser=True))
    listed = auditor.get(reverse("admin:moderation_auditevent_changelist"), {"object_type": "webhookendpoint"})
    page = listed.content.decode()
    assert listed.status_code == 200 and "webhook.create" in page and "webhook.disable" in page
    assert secret not in page


def test_a_redelivery_and_the_senders_disable_after_failures_are_audited(platform, make_user, settings) -> None:
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 1
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    user = make_user("admin")
    admin = Client()
    admin.force_login(user)
    with Receiver(answer=lambda n: 200 if n == 1 else 500) as receiver:
        endpoint, _secret = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        model_version_promote(model_version=ModelVersionFactory(name="candidate-audit"))
        [delivery_id] = outbox_dispatch()
        assert webhook_delivery_send(delivery_id=delivery_id) == "delivered"
        admin.post(reverse("moderation:webhook_redeliver", args=[delivery_id]))
        assert WebhookDelivery.objects.get(pk=delivery_id).status == WebhookDelivery.Status.PENDING
        assert webhook_delivery_send(delivery_id=delivery_id) == "retrying"  # a 500: one failure disables it

    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).is_active
    assert _endpoint_events(endpoint) == [
        ("webhook.create", ""),  # made in a shell or a test: no one named
        ("webhook.redeliver", user.username),
        ("webhook.auto_disable", ""),
    ]
    disabled = AuditEvent.objects.get(action="webhook.auto_disable")
    assert disabled.actor is None and disabled.payload["reason"].startswith("Disabled after 1 failed attempt")
