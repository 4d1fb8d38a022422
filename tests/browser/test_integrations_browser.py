"""The integrations screens and the API token page in Chromium at 1440x900, as an admin and a user work them.
``SHOTS_DIR`` set: each step's screenshot is saved there (to look at them)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from moderation.integrations.models import OutboxEvent, WebhookDelivery, WebhookEndpoint
from moderation.integrations.services import integration_create
from moderation.integrations.webhooks import webhook_endpoint_create
from tests.browser.conftest import CHROMIUM
from tests.browser.signin import sign_in
from tests.browser.test_accessibility import _violations

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium")]


def _shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("SHOTS_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def _delivery(endpoint: WebhookEndpoint, **fields) -> WebhookDelivery:  # type: ignore[no-untyped-def]
    event = OutboxEvent.objects.create(
        type="model.promoted", payload={"model_version": "qwen2.5-vl-sft-7"}, dispatched_at=timezone.now()
    )
    return WebhookDelivery.objects.create(endpoint=endpoint, event=event, **fields)


@pytest.mark.django_db(transaction=True)
def test_an_admin_reads_the_held_deliveries_of_a_disabled_endpoint_and_switches_an_integration(
    page, make_user, settings
):
    settings.WEBHOOK_DISABLE_AFTER_FAILURES = 50
    integration, _ = integration_create(name="clips-platform")
    endpoint, _ = webhook_endpoint_create(
        integration=integration, url="https://clips.example/hooks/moderation", event_types=["model.promoted"]
    )
    now = timezone.now()
    past = now - timedelta(hours=1)
    delivered = _delivery(
        endpoint,
        status="delivered",
        attempts=1,
        last_status_code=200,
        last_latency_ms=84.0,
        delivered_at=now - timedelta(hours=3),
    )
    held = _delivery(
        endpoint, status="retrying", attempts=6, last_status_code=503, last_latency_ms=1210.0, next_attempt_at=past
    )
    waiting = _delivery(endpoint, status="pending", next_attempt_at=past)
    gave_up = _delivery(endpoint, status="failed", attempts=15, last_error="ConnectTimeout: timed out")
    for minutes, delivery in zip((200, 150, 120, 60), (delivered, gave_up, held, waiting), strict=True):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=now - timedelta(minutes=minutes))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        is_active=False,
        consecutive_failures=50,
        disabled_at=past,
        disabled_reason="Disabled after 50 failed attempts in a row; the last: HTTP 503",
    )

    sign_in(page, make_user("admin").username, screen=True)
    page.goto(f"/integrations/endpoints/{endpoint.pk}/")
    held_row = page.locator(f"#delivery-{held.pk}")
    assert "Held: endpoint disabled after 50 failed attempts in a row" in held_row.inner_text()
    assert "Retrying" not in held_row.inner_text() and held_row.get_by_role("button").count() == 0
    assert "Held" in page.locator(f"#delivery-{waiting.pk}").inner_text()
    assert "Delivered" in page.locator(f"#delivery-{delivered.pk}").inner_text()
    assert "gave up after 15 attempts" in page.locator(f"#delivery-{gave_up.pk}").inner_text()
    # Redeliver would be refused while the endpoint is off: not offered on any row.
    assert page.locator("#delivery-log").get_by_role("button", name="Redeliver").count() == 0
    assert page.get_by_role("button", name="Enable and send the 2 held deliveries").is_visible()
    _shot(page, "deliveries-disabled-endpoint")
    assert _violations(page) == []

    # The integration's switch (htmx): the endpoint row's note changes beside it, without a reload.
    page.goto("/integrations/")
    for minutes, delivery in zip((200, 150, 120, 60), (delivered, gave_up, held, waiting), strict=True):
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=now - timedelta(minutes=minutes))
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(is_active=True, consecutive_failures=0)
    page.reload()
    row = page.locator(f"#endpoint-{endpoint.pk}")
    assert "switched off" not in row.inner_text()
    page.get_by_role("button", name="Switch off…").click()
    page.get_by_role("button", name="Yes, switch it off").click()
    page.locator(f"#integration-switch-{integration.pk} .notice").wait_for()
    assert "nothing is sent while “clips-platform” is switched off" in row.inner_text()
    assert "2 held" in row.inner_text()
    _shot(page, "integrations-switched-off")
    assert _violations(page) == []


@pytest.mark.django_db(transaction=True)
def test_a_user_makes_their_api_token_from_the_user_menu_and_copies_it(page, make_user, settings):
    settings.API_TOKEN_LIFETIME_DAYS = 90
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    sign_in(page, make_user("moderator").username, screen=True)
    page.goto("/")
    page.locator(".who").get_by_role("link", name="API token").click()
    assert page.get_by_text("You have no API token.").is_visible()
    _shot(page, "api-token-none")
    page.get_by_role("button", name="Create a token (shown once)").click()
    key = page.locator("#api-token-key").inner_text()
    assert len(key) == 40
    page.get_by_role("button", name="Copy").click()
    page.wait_for_function("() => document.querySelector('[data-copy]').textContent !== 'Copy'")
    copied = page.locator("[data-copy]").inner_text()
    assert copied in ("Copied", "Selected: press Ctrl+C")
    if copied == "Copied":
        assert page.evaluate("navigator.clipboard.readText()") == key
    assert page.get_by_text(f"{key[:8]}…").is_visible()
    _shot(page, "api-token-created")
    assert _violations(page) == []
    page.reload()
    assert page.locator("#api-token-key").count() == 0  # shown once
    page.get_by_text("Rotate…").click()
    _shot(page, "api-token-rotate")
    assert _violations(page) == []
    # Rotating shows the new key once, says the old one is refused, and the audit log has it.
    page.get_by_role("button", name="Rotate my token").click()
    new = page.locator("#api-token-key").inner_text()
    assert new != key and page.get_by_text("The old token is refused from now on.").is_visible()
    _shot(page, "api-token-rotated")


@pytest.mark.django_db(transaction=True)
def test_send_a_test_event_shows_queued_then_delivered_under_the_button_without_a_reload(page, make_user):
    """The button said "queued: reload the page to see it". Now its line follows the delivery (htmx, every second)
    to "Delivered: the endpoint answered HTTP 200", and the delivery log below gains the row, the page unreloaded."""
    from moderation.integrations.webhooks import webhook_delivery_send
    from tests.browser.signin import shots_dir
    from tests.moderation.integrations.receiver import Receiver

    integration, _ = integration_create(name="clips-platform")
    with Receiver() as receiver:
        endpoint, _ = webhook_endpoint_create(integration=integration, url=receiver.url, event_types=["model.promoted"])
        sign_in(page, make_user("admin").username, screen=True)
        page.goto(f"/integrations/endpoints/{endpoint.pk}/")
        page.evaluate("() => { window.notReloaded = true; }")
        page.get_by_role("button", name="Send a test event").click()
        line = page.locator("#test-outcome")
        line.get_by_text("Queued: waiting for a worker to send it").wait_for()
        [delivery] = WebhookDelivery.objects.filter(endpoint=endpoint)
        page.locator(f"#delivery-{delivery.pk}").wait_for()  # the log redrew with the new row
        page.screenshot(path=str(shots_dir() / "webhook-test-event-queued.png"), full_page=False)
        assert webhook_delivery_send(delivery_id=delivery.pk) == "delivered"  # what a webhooks worker does
        page.wait_for_function(
            "() => document.querySelector('#test-outcome [data-test-outcome=final]') !== null", timeout=5_000
        )
    assert "Delivered: the endpoint answered HTTP 200" in line.inner_text()
    page.wait_for_function(f"() => document.querySelector('#delivery-{delivery.pk}').innerText.includes('HTTP 200')")
    assert page.evaluate("() => window.notReloaded === true")
    assert len(receiver.requests) == 1
    page.screenshot(path=str(shots_dir() / "webhook-test-event-delivered.png"), full_page=False)
