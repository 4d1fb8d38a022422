from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from moderation.integrations.services import integration_create


@pytest.fixture
def platform(db):  # type: ignore[no-untyped-def]
    """An integration and an API client that sends its token."""
    integration, token = integration_create(name="platform-a")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    client.integration = integration  # type: ignore[attr-defined]
    return client


@pytest.fixture
def other_platform(db):  # type: ignore[no-untyped-def]
    integration, token = integration_create(name="platform-b")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    client.integration = integration  # type: ignore[attr-defined]
    return client
