"""Deliveries of an endpoint that is off (disabled by an admin, after too many failed attempts, or its integration
switched off) say they are held, not "Retrying" with a next try in the past; switching it back on sends them at once;
and the integrations screen's switch brings the endpoints' notes up to date without a reload."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from moderation.inference.services import model_version_promote
from moderation.integrations.models import WebhookDelivery, WebhookEndpoint
from moderation.integrations.webhooks import (
    DELIVER_TASK,
    outbox_dispatch,
    webhook_delivery_send,
    webhook_endpoint_create,
)
from tests.factories import ModelVersionFactory
from tests.moderation.integrations.receiver import Receiver

pytestmark = pytest.mark.django_db


def _queued(callbacks: list[Any]) -> list[int]:
    """The delivery ids the captured after-commit callbacks would queue."""
    return sorted(cb.args[2][0] for cb in callbacks if getattr(cb, "args", ())[:1] == (DELIVER_TASK,))


def _promote(n: int) -> list[int]:
    for i in range(n):
        model_version_promote(model_version=ModelVersionFactory(name=f"held-candidate-{i}"))
    return sorted(outbox_dispatch())


def _due_now(delivery_id: int) -> None:
    WebhookDelivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())


def _row(html: str, delivery_id: int) -> str:
    found = re.search(rf'<tr id="delivery-{delivery_id}">(.*?)</tr>', html, re.S)
    assert found, f"no row for delivery {delivery_id}"
    return found.group(1)


def test_an_endpoint_disabled_after_failed_attempts_holds_its_deliveries_and_sends_them_when_enabled(
    platform, client_as, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 2
    settings.WEBHOOK_RETRY_BASE_SECONDS = 1
    with Receiver(answer=lambda n: 500 if n <= 2 else 200) as receiver:
        endpoint, _ = webhook_endpoint_create(
            integration=platform.integration, url=receiver.url, event_types=["model.promoted"]
        )
        first, second = _promote(2)
        assert webhook_delivery_send(delivery_id=first) == "retrying"
        _due_now(first)
        assert webhook_delivery_send(delivery_id=first) == "retrying"
        endpoint.refresh_from_db()
        # Two attempts of one delivery disabled it: the reason counts attempts, as the setting does.
        assert not endpoint.is_active
        assert endpoint.disabled_reason.startswith("Disabled after 2 failed attempts in a row; the last: HTTP 500")
        assert "deliveries" not in endpoint.disabled_reason
        _due_now(first)
        assert webhook_delivery_send(delivery_id=first) == "endpoint-disabled"

        admin = client_as("admin")
        html = admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode()
        row = _row(html, first)
        assert "Held: endpoint disabled after 2 failed attempts in a row" in row
        assert "Goes out as soon as the endpoint is enabled again." in row
        assert "Retrying" not in row and "Next try" not in row and "Redeliver" not in row
        assert "Held: endpoint disabled after 2 failed attempts in a row" in _row(html, second)
        assert "2 deliveries are held: they go out as soon as you enable it." in html
        assert "Enable and send the 2 held deliveries" in html
        # Redelivering a held delivery would send nothing: refused with the reason, nothing queued.
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            refused = admin.post(f"/integrations/deliveries/{first}/redeliver/", HTTP_HX_REQUEST="true")
        assert refused.status_code == 200 and "This endpoint is disabled: enable it" in refused.content.decode()
        assert _queued(callbacks) == []
        listed = admin.get("/integrations/").content.decode()
        assert "2 held" in re.search(rf'<tr id="endpoint-{endpoint.pk}">(.*?)</tr>', listed, re.S).group(1)  # type: ignore[union-attr]

        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            enabled = admin.post(
                f"/integrations/endpoints/{endpoint.pk}/toggle/", {"to": "on"}, follow=True
            ).content.decode()
        assert "Endpoint enabled: its held deliveries go out now." in enabled
        assert _queued(callbacks) == [first, second]  # both go out at once, not at their old retry times
        assert webhook_delivery_send(delivery_id=first) == "delivered"
        assert webhook_delivery_send(delivery_id=second) == "delivered"
    html = admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode()
    assert "Delivered" in _row(html, first) and "Held" not in html


def test_an_endpoint_an_admin_disabled_says_so_and_a_live_retry_still_shows_its_next_try(platform, client_as, settings):
    endpoint, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/off", event_types=["model.promoted"]
    )
    [delivery_id] = _promote(1)
    later = timezone.now() + timezone.timedelta(minutes=5)
    WebhookDelivery.objects.filter(pk=delivery_id).update(status="retrying", attempts=1, next_attempt_at=later)
    admin = client_as("admin")
    row = _row(admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode(), delivery_id)
    assert "Retrying" in row and f"Next try {timezone.localtime(later):%H:%M:%S}" in row and "Redeliver" in row

    disabled = admin.post(f"/integrations/endpoints/{endpoint.pk}/toggle/", {"to": "off"}, follow=True).content.decode()
    assert "its waiting deliveries are held until you enable it again" in disabled
    row = _row(disabled, delivery_id)
    assert "Held: endpoint disabled" in row and "failed attempts" not in row and "Next try" not in row
    # An attempt in flight when it was disabled is still "Sending" (its result is recorded as it comes); once its
    # sender is gone (lease lapsed) it is held like the rest.
    lease = timezone.now() + timezone.timedelta(seconds=20)
    WebhookDelivery.objects.filter(pk=delivery_id).update(status="sending", attempts=2, lease_expires_at=lease)
    row = _row(admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode(), delivery_id)
    assert "Sending" in row and "Attempt 2 is in flight." in row and "Redeliver" not in row
    WebhookDelivery.objects.filter(pk=delivery_id).update(lease_expires_at=timezone.now())
    row = _row(admin.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode(), delivery_id)
    assert "Held: endpoint disabled" in row


def test_an_integration_switched_off_holds_its_deliveries_and_its_switch_updates_the_endpoint_rows(
    platform, make_user, django_capture_on_commit_callbacks
):
    admin = make_user("admin")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    client.get("/integrations/")
    csrf = client.cookies["csrftoken"].value
    integration = platform.integration
    endpoint, _ = webhook_endpoint_create(
        integration=integration, url="http://127.0.0.1:9/platform-hook", event_types=["model.promoted"]
    )
    [delivery_id] = _promote(1)
    url = f"/integrations/{integration.pk}/switch/"

    off = client.post(url, {"to": "off"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf).content.decode()
    # The htmx answer carries the endpoint table too (swapped in out of band): its note and held count now.
    table = re.search(
        rf'<table id="integration-endpoints-{integration.pk}" hx-swap-oob="true">(.*?)</table>', off, re.S
    )
    assert table, off
    assert f"nothing is sent while “{integration.name}” is switched off" in table.group(1)
    assert "1 held<" in table.group(1)
    assert webhook_delivery_send(delivery_id=delivery_id) == "endpoint-disabled"

    page = client.get(f"/integrations/endpoints/{endpoint.pk}/").content.decode()
    assert "Held: integration switched off" in _row(page, delivery_id)
    assert "1 delivery is held and goes out as soon as it is switched on again." in page

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        on = client.post(url, {"to": "on"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf).content.decode()
    assert _queued(callbacks) == [delivery_id]  # what waited goes out now, as the confirmation said
    table = re.search(rf'<table id="integration-endpoints-{integration.pk}" hx-swap-oob="true">(.*?)</table>', on, re.S)
    assert table and "is switched off" not in table.group(1) and " held<" not in table.group(1)
    # An endpoint disabled by itself stays held when its integration comes back on.
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=False)
    client.post(url, {"to": "off"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(url, {"to": "on"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf)
    assert _queued(callbacks) == []


def _metric(text: str, name: str) -> float:
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


def test_held_deliveries_are_counted_apart_and_do_not_age_the_delivery_lag_metric(platform, other_platform, settings):
    """An endpoint switched off holds its deliveries for as long as its platform likes: /metrics' lag (what on-call
    alerts on) counted them, so one switched-off platform paged every hour. The lag is now that of deliveries that can
    go out; held ones are a gauge of their own."""
    settings.METRICS_TOKEN = "scrape-secret"
    off, _ = webhook_endpoint_create(
        integration=platform.integration, url="http://127.0.0.1:9/off", event_types=["model.promoted"]
    )
    on, _ = webhook_endpoint_create(
        integration=other_platform.integration, url="http://127.0.0.1:9/on", event_types=["model.promoted"]
    )
    _promote(1)
    WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=False)
    WebhookDelivery.objects.filter(endpoint=off).update(status=WebhookDelivery.Status.RETRYING)
    from moderation.integrations.models import OutboxEvent

    OutboxEvent.objects.update(created_at=timezone.now() - timezone.timedelta(hours=3))

    def scrape() -> str:
        return Client().get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret").content.decode()

    text = scrape()
    assert _metric(text, "workbench_webhook_deliveries_held") == 1.0
    assert 3 * 3600 - 60 < _metric(text, "workbench_webhook_delivery_lag_seconds") < 3 * 3600 + 600  # the active one
    WebhookDelivery.objects.filter(endpoint=on).update(status=WebhookDelivery.Status.DELIVERED)
    text = scrape()
    assert _metric(text, "workbench_webhook_delivery_lag_seconds") == 0.0  # only the held one waits
    assert _metric(text, "workbench_webhook_deliveries_held") == 1.0
    platform.integration.is_active = False  # a switched-off integration holds too, whatever its endpoint says
    platform.integration.save(update_fields=["is_active"])
    WebhookEndpoint.objects.filter(pk=off.pk).update(is_active=True)
    assert _metric(scrape(), "workbench_webhook_deliveries_held") == 1.0
