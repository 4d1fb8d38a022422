"""TRACE, CONNECT and made-up methods are answered 405 with ``Allow``, on every kind of route: a function view
tells a form's POST from everything else, so TRACE (which CSRF lets through as a safe method) or ``FOO`` rendered
the page as a GET does, the review item and the API's lists included. The scan of every route is in
tests/hardening/test_get_writes_nothing.py."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.factories import VideoFactory

pytestmark = pytest.mark.django_db

UNUSUAL = ("TRACE", "CONNECT", "PROPFIND", "FOO")


@pytest.fixture
def admin(make_user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(make_user("admin", is_staff=True, is_superuser=True))
    return client


def test_unusual_methods_are_405_with_allow_on_pages_the_api_and_probes(admin: Client) -> None:
    video = VideoFactory()
    routes = {
        reverse("home"): None,
        reverse("moderation:video_list"): None,
        reverse("moderation:video_detail", args=[video.pk]): None,
        reverse("moderation:queue"): None,
        reverse("login"): None,
        reverse("healthz"): None,
        "/admin/": None,
        "/no/such/page/": None,
        # The API's own views name what they take.
        reverse("moderation:api-video-list"): {"GET", "HEAD", "POST", "OPTIONS"},
        reverse("moderation:api-video-detail", args=[video.pk]): {"GET", "HEAD", "OPTIONS"},
    }
    for url, allow in routes.items():
        assert admin.get(url).status_code in (200, 302, 404), url  # each is a route a GET answers
        for method in UNUSUAL:
            response = admin.generic(method, url)
            assert response.status_code == 405, (method, url, response.status_code)
            allowed = {m.strip() for m in response["Allow"].split(",")}
            assert "GET" in allowed and method not in allowed and "TRACE" not in allowed, (method, url, allowed)
            if allow is not None:
                assert allowed == allow, (url, allowed)
            body = response.content.decode()
            assert f"{method} is not answered here" in body, (method, url, body)
            if url.startswith("/api/"):
                assert response["Content-Type"] == "application/json" and response.json()["detail"], url
            else:
                assert response["Content-Type"].startswith("text/plain"), (url, response["Content-Type"])


def test_a_trace_echoes_nothing_and_a_method_not_a_token_is_not_repeated(client) -> None:  # type: ignore[no-untyped-def]
    response = client.generic("TRACE", reverse("login"), HTTP_COOKIE="sessionid=secret-session", HTTP_X_SECRET="x1")
    assert response.status_code == 405 and b"secret-session" not in response.content and b"x1" not in response.content
    odd = client.generic("<SCRIPT>", reverse("login"))
    assert odd.status_code == 405 and b"SCRIPT" not in odd.content and b"This method is not answered" in odd.content


def test_a_probe_from_a_host_not_allowed_is_405_for_trace_too(client, settings) -> None:  # type: ignore[no-untyped-def]
    """``/healthz`` answers a probe whatever Host it sends; a TRACE at it was answered as a GET."""
    settings.ALLOWED_HOSTS = ["workbench.example"]
    assert client.get("/healthz", HTTP_HOST="10.0.0.7:8000").status_code == 200
    response = client.generic("TRACE", "/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 405 and response["Allow"]


def test_the_usual_methods_still_reach_the_views(admin: Client) -> None:
    assert admin.get(reverse("home")).status_code == 200
    assert admin.head(reverse("home")).status_code == 200
    assert admin.options(reverse("moderation:api-video-list")).status_code == 200
    # A view's own 405 for a usual method it does not take is left as it is.
    assert admin.put(reverse("moderation:api-video-detail", args=[VideoFactory().pk])).status_code == 405
