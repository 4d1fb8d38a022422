"""The browsable API opened signed out: a page that says how to authenticate, still a 401 naming the token scheme.

Before, a person who opened /api/ in a browser got DRF's page around "Authentication credentials were not
provided." and nothing else: no way to sign in from there, nor a word on how a script gets a token."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/", "/api/decisions/"])
def test_a_signed_out_browser_is_told_how_to_authenticate(url: str) -> None:
    page = Client().get(url, HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert page.status_code == 401 and page["WWW-Authenticate"] == "Token"
    assert page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert 'id="api-signed-out"' in html
    assert f'href="{reverse("login")}?next={url}"' in html
    assert reverse("api-token-page") in html and "Authorization: Token" in html
    assert "POST /api/token/" in html


def test_api_clients_still_get_a_401_in_json_naming_the_token_scheme() -> None:
    response = Client().get("/api/", HTTP_ACCEPT="application/json")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"] == "Authentication credentials were not provided."
    assert b"api-signed-out" not in response.content


def test_a_signed_in_browser_sees_no_sign_in_box(client_as) -> None:  # type: ignore[no-untyped-def]
    page = client_as("moderator").get("/api/", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and 'id="api-signed-out"' not in page.content.decode()
