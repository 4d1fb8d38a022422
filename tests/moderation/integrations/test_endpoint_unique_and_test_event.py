"""One endpoint per URL per integration (race-safe), and an endpoint page's "Send a test event"."""

from __future__ import annotations

import json

import pytest

from moderation.errors import ModerationError
from moderation.integrations.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from moderation.integrations.services import integration_create
from moderation.integrations.signing import verify
from moderation.integrations.webhooks import (
    WebhookEndpointExists,
    outbox_dispatch,
    webhook_delivery_send,
    webhook_endpoint_create,
    webhook_endpoint_disable,
)
from moderation.review.models import AuditEvent
from tests.moderation.integrations.receiver import Receiver
from tests.races import race

URL = "https://platform.example/hooks/moderation"


@pytest.mark.django_db
def test_adding_an_endpoint_for_a_url_already_used_is_refused_with_a_link_to_it(platform, other_platform, client_as):
    first, _ = webhook_endpoint_create(integration=platform.integration, url=URL, event_types=["model.promoted"])
    admin = client_as("admin")
    form = {"url": f"  {URL} ", "event_types": ["decision.created"], "only_own_videos": "on"}
    page = admin.post(f"/integrations/{platform.integration.pk}/endpoints/add/", form)
    assert page.status_code == 400
    html = page.content.decode()
    assert "an endpoint for this URL already exists" in html
    assert f'href="/integrations/endpoints/{first.pk}/"' in html
    assert WebhookEndpoint.objects.filter(integration=platform.integration).count() == 1

    # A disabled one counts too (enabling it is the way back), and says so.
    webhook_endpoint_disable(endpoint=first, reason="paused")
    with pytest.raises(WebhookEndpointExists, match="disabled"):
        webhook_endpoint_create(integration=platform.integration, url=URL, event_types=["model.promoted"])

    # Another platform may use the same receiver: it gets its own secret and only its own videos' events.
    other = admin.post(f"/integrations/{other_platform.integration.pk}/endpoints/add/", form)
    assert other.status_code == 302
    assert WebhookEndpoint.objects.filter(url=URL).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_adds_of_one_url_at_once_make_one_endpoint():
    integration, _ = integration_create(name="platform-race")

    def add() -> WebhookEndpoint:
        endpoint, _secret = webhook_endpoint_create(integration=integration, url=URL, event_types=["model.promoted"])
        return endpoint

    raced = race(add, add)
    assert isinstance(raced.first, WebhookEndpoint)
    assert isinstance(raced.second, WebhookEndpointExists), raced.second
    assert raced.second.existing.pk == raced.first.pk
    assert raced.second_waited
    assert WebhookEndpoint.objects.filter(integration=integration).count() == 1


@pytest.mark.django_db
def test_send_a_test_event_delivers_one_signed_webhook_test_to_that_endpoint_and_logs_it(
    platform, other_platform, client_as
):
    with Receiver() as receiver:
        endpoint, secret = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        bystander, _ = webhook_endpoint_create(
            integration=other_platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        admin = client_as("admin")
        page = admin.get(f"/integrations/endpoints/{endpoint.pk}/")
        assert "Send a test event" in page.content.decode()

        resp = admin.post(f"/integrations/endpoints/{endpoint.pk}/test/")
        assert resp.status_code == 302
        [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
        assert delivery.event.type == "webhook.test"
        assert outbox_dispatch() == []  # never fanned out to another endpoint
        assert not bystander.deliveries.exists()

        assert webhook_delivery_send(delivery_id=delivery.pk) == "delivered"

    [request] = receiver.requests
    headers, body = request["headers"], request["body"]
    assert headers["Workbench-Event-Type"] == "webhook.test"
    verify(secret=secret, header=headers["Workbench-Signature"], body=body)
    envelope = json.loads(body)
    assert envelope["type"] == "webhook.test" and envelope["data"]["test"] is True
    assert envelope["id"] == headers["Workbench-Event-Id"] == str(delivery.event_id)

    html = admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode()
    assert f'id="delivery-{delivery.pk}"' in html and "webhook.test" in html and "HTTP 200" in html
    assert AuditEvent.objects.filter(action="webhook.test").count() == 1

    for role in ("moderator", "labeler", "policy_editor"):
        assert client_as(role).post(f"/integrations/endpoints/{endpoint.pk}/test/").status_code == 403
    assert OutboxEvent.objects.filter(type="webhook.test").count() == 1


@pytest.mark.django_db
def test_a_test_event_to_a_disabled_endpoint_is_refused_with_the_reason(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/x", event_types=["model.promoted"]
    )
    webhook_endpoint_disable(endpoint=endpoint, reason="paused")
    resp = client_as("admin").post(f"/integrations/endpoints/{endpoint.pk}/test/", follow=True)
    assert "No test event sent: This endpoint is disabled" in resp.content.decode()
    assert not WebhookDelivery.objects.exists()
    with pytest.raises(ModerationError):
        from moderation.integrations.webhooks import webhook_endpoint_test_send

        webhook_endpoint_test_send(endpoint=endpoint)
