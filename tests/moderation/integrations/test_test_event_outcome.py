""" "Send a test event" says its outcome under the button (an htmx partial that asks again every second until the
delivery is delivered or failed, through its retries), where it said "reload the page to see it"."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from moderation.integrations.models import WebhookDelivery
from moderation.integrations.selectors import TEST_OUTCOME_POLLS
from moderation.integrations.webhooks import webhook_delivery_send, webhook_endpoint_create, webhook_endpoint_disable
from tests.moderation.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def _polls(html: str) -> str | None:
    """The address the outcome line asks next (``hx-get`` with ``every 1s``), or None when it asks no more."""
    found = re.search(r'hx-get="([^"]+)" hx-trigger="every \d+s"', html)
    return found.group(1).replace("&amp;", "&") if found else None


def _send(admin: Client, endpoint_pk: int) -> tuple[str, WebhookDelivery]:
    response = admin.post(f"/integrations/endpoints/{endpoint_pk}/test/", **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "delivery-log-changed"  # the log below redraws with the new row
    return response.content.decode(), WebhookDelivery.objects.get(endpoint_id=endpoint_pk)


def test_the_test_line_says_queued_then_delivered_with_the_http_status_without_a_reload(platform, client_as):
    admin = client_as("admin")
    with Receiver() as receiver:
        endpoint, _ = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        queued, delivery = _send(admin, endpoint.pk)
        assert "<html" not in queued  # the line alone, no page
        assert "Queued: waiting for a worker to send it" in queued and str(delivery.event_id) in queued
        ask = _polls(queued)
        assert ask == f"/integrations/deliveries/{delivery.pk}/test-outcome/?polls=1"

        still = admin.get(ask, **HTMX).content.decode()
        assert "Queued" in still and _polls(still) is not None and "?polls=2" in still

        assert webhook_delivery_send(delivery_id=delivery.pk) == "delivered"  # what the worker does

    done = admin.get(ask, **HTMX)
    html = done.content.decode()
    assert "Delivered: the endpoint answered HTTP 200 in" in html and " ms." in html
    assert _polls(html) is None  # final: it asks no more
    assert done["HX-Trigger"] == "delivery-log-changed"


def test_a_refused_attempt_says_the_http_status_and_the_retry_and_keeps_asking(platform, client_as):
    admin = client_as("admin")
    with Receiver(answer=lambda n: 503) as receiver:
        endpoint, _ = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        queued, delivery = _send(admin, endpoint.pk)
        assert webhook_delivery_send(delivery_id=delivery.pk) == "retrying"
    html = admin.get(_polls(queued), **HTMX).content.decode()  # type: ignore[arg-type]
    assert "Not delivered yet: attempt 1 of 15 got HTTP 503" in html and "Next try" in html
    assert _polls(html) is not None  # it follows the retries (tests/hardening/test_adversarial_pass_12_findings.py)


def test_a_delivery_that_gave_up_says_the_error(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="https://platform.example/hook", event_types=["model.promoted"]
    )
    queued, delivery = _send(client_as("admin"), endpoint.pk)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status="failed", attempts=15, last_error="ConnectTimeout: timed out"
    )
    html = client_as("admin").get(_polls(queued), **HTMX).content.decode()  # type: ignore[arg-type]
    assert "Failed after 15 attempts: ConnectTimeout: timed out." in html and _polls(html) is None


def test_a_test_nobody_sends_stops_asking_after_its_polls_and_says_why(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="https://platform.example/hook", event_types=["model.promoted"]
    )
    admin = client_as("admin")
    _queued, delivery = _send(admin, endpoint.pk)
    last = admin.get(f"/integrations/deliveries/{delivery.pk}/test-outcome/?polls={TEST_OUTCOME_POLLS}", **HTMX)
    html = last.content.decode()
    assert f"Still queued after {TEST_OUTCOME_POLLS} seconds" in html and _polls(html) is None


def test_a_refused_test_says_why_in_the_line_and_queues_nothing(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="https://platform.example/hook", event_types=["model.promoted"]
    )
    webhook_endpoint_disable(endpoint=endpoint, reason="paused")
    response = client_as("admin").post(f"/integrations/endpoints/{endpoint.pk}/test/", **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-test-outcome="refused"' in html
    assert "No test event sent: This endpoint is disabled" in html and _polls(html) is None
    assert not WebhookDelivery.objects.exists()


def test_the_endpoint_page_posts_the_test_by_htmx_into_a_live_line_and_the_log_follows(platform, client_as):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="https://platform.example/hook", event_types=["model.promoted"]
    )
    html = client_as("admin").get(f"/integrations/endpoints/{endpoint.pk}/").content.decode()
    assert f'hx-post="/integrations/endpoints/{endpoint.pk}/test/" hx-target="#test-outcome"' in html
    assert '<div id="test-outcome" role="status"></div>' in html
    assert 'hx-trigger="delivery-log-changed from:body"' in html
    for role in ("moderator", "labeler", "policy_editor"):
        assert client_as(role).get("/integrations/deliveries/1/test-outcome/").status_code == 403
