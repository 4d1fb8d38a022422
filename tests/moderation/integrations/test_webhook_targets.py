"""Webhook targets inside the deployment (loopback, link-local/cloud metadata, private networks) are
refused when an admin adds the endpoint and again before each delivery, which connects to the address it
checked (a name that re-resolves to an internal address is not followed); WEBHOOK_ALLOW_PRIVATE_TARGETS
allows them. Name resolution is the only thing replaced, in the rebinding test: it is the attack."""

from __future__ import annotations

import socket

import pytest
from django.urls import reverse

from moderation.inference.services import model_version_promote
from moderation.integrations import targets
from moderation.integrations.models import WebhookDelivery, WebhookEndpoint
from moderation.integrations.webhooks import outbox_dispatch, webhook_delivery_send, webhook_endpoint_create
from tests.factories import ModelVersionFactory
from tests.moderation.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "private-network"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://100.100.100.200/hook", "non-public"),
    ],
)
def test_an_internal_target_is_refused_on_the_form_with_the_reason(platform, client_as, settings, url, kind) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    admin = client_as("admin")

    page = admin.post(
        reverse("moderation:webhook_endpoint_add", args=[platform.integration.pk]),
        {"url": url, "event_types": ["model.promoted"]},
    ).content.decode()

    assert "Webhooks may not be sent to" in page and kind in page and "WEBHOOK_ALLOW_PRIVATE_TARGETS" in page
    assert not WebhookEndpoint.objects.exists()


def test_a_public_address_is_accepted_and_the_setting_allows_private_ones(platform, settings) -> None:
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="https://93.184.216.34/hook", event_types=["model.promoted"]
    )
    assert endpoint.pk
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert webhook_endpoint_create(
        integration=platform.integration, url="http://10.1.2.3/hook", event_types=["model.promoted"]
    )[0].pk


def test_a_name_that_re_resolves_to_loopback_is_not_sent_to_and_delivery_uses_the_checked_address(
    platform, settings, monkeypatch
) -> None:
    real = socket.getaddrinfo
    answer = {"ip": "93.184.216.34"}

    def resolve(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        if host == "hooks.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["ip"], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(targets.socket, "getaddrinfo", resolve)
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    with Receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        url = f"http://hooks.example.test:{port}/hook"
        webhook_endpoint_create(integration=platform.integration, url=url, event_types=["model.promoted"])
        answer["ip"] = "127.0.0.1"  # the attacker's DNS now points the name inside
        model_version_promote(model_version=ModelVersionFactory(name="candidate-rebind"))
        [delivery_id] = outbox_dispatch()

        assert webhook_delivery_send(delivery_id=delivery_id) == "retrying"

        delivery = WebhookDelivery.objects.get(pk=delivery_id)
        assert delivery.last_error.startswith("Not sent: Webhooks may not be sent to hooks.example.test (127.0.0.1)")
        assert receiver.requests == []

        # On-premises: allowed, and sent to the address just checked (the name resolves nowhere else).
        settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
        WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=None)
        assert webhook_delivery_send(delivery_id=delivery_id) == "delivered"
        assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{port}"
