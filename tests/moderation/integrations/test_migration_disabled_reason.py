"""Migration 0037: an endpoint disabled before the reason's wording was fixed reads as one disabled since
("failed attempts in a row": what the count is), and no other reason is touched."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from moderation.integrations.models import WebhookEndpoint
from moderation.integrations.services import integration_create

pytestmark = pytest.mark.django_db

migration = importlib.import_module("moderation.migrations.0037_webhook_disabled_reason_wording")


def test_old_disable_reasons_are_reworded_and_others_kept() -> None:
    integration, _token = integration_create(name="shop-app", rate_limit="")

    def endpoint(reason: str) -> WebhookEndpoint:
        return WebhookEndpoint.objects.create(
            integration=integration,
            url="https://example.com/h",
            secret="k",
            event_types=["x"],
            is_active=False,
            disabled_reason=reason,
        )

    old = endpoint("Disabled after 50 consecutive failed deliveries; the last: HTTP 503")
    by_hand = endpoint("Switched off by alice: consecutive failed deliveries were expected during the migration")
    new = endpoint("Disabled after 50 failed attempts in a row; the last: ConnectTimeout")

    migration.reword_disabled_reasons(apps, None)

    reasons = {e.pk: e.disabled_reason for e in WebhookEndpoint.objects.all()}
    assert reasons[old.pk] == "Disabled after 50 failed attempts in a row; the last: HTTP 503"
    assert reasons[by_hand.pk] == by_hand.disabled_reason
    assert reasons[new.pk] == new.disabled_reason
