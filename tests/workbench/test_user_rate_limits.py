"""Per-user rates on the REST API and on video uploads. Integrations had a per-integration rate; a signed-in user or
a user's API token had none, so one script could call the API, or upload videos, as fast as the server answered.
Now each user has an API request rate (USER_API_RATE_LIMIT) and a lower upload rate (UPLOAD_RATE_LIMIT) shared by
the upload form and ``POST /api/videos/``; over either: 429 with ``Retry-After`` (the form: shown again, saying when).
Counted in the real Redis (the ``throttle`` cache) the suite starts."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from moderation.integrations.services import integration_create

pytestmark = pytest.mark.django_db


def _token_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    session = Client()
    session.force_login(user)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {session.post('/api/token/').json()['token']}")
    return api


def test_a_user_over_their_api_rate_is_answered_429_with_retry_after(make_user, settings):
    settings.USER_API_RATE_LIMIT = "3/min"
    alice, bob = make_user("moderator"), make_user("moderator")
    api = _token_client(alice)  # (its POST /api/token/ counted too: 1 of 3)
    assert [api.get("/api/decisions/").status_code for _ in range(2)] == [200, 200]
    refused = api.get("/api/decisions/")
    assert refused.status_code == 429 and refused["Content-Type"].startswith("application/json")
    assert "throttled" in refused.json()["detail"] and 0 < int(refused["Retry-After"]) <= 60
    # The same user's session is the same user: refused too. Another user is not.
    session = Client()
    session.force_login(alice)
    assert session.get("/api/decisions/").status_code == 429
    other = Client()
    other.force_login(bob)
    assert other.get("/api/decisions/").status_code == 200
    # A platform's calls count against its integration's rate, not a user's.
    _integration, token = integration_create(name="rate-platform")
    platform = APIClient()
    platform.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    assert [platform.get("/api/labels/").status_code for _ in range(5)] == [200] * 5


def test_uploads_share_one_lower_rate_between_the_form_and_the_api(make_user, settings):
    settings.UPLOAD_RATE_LIMIT = "2/hour"
    user = make_user("moderator")
    browser = Client()
    browser.force_login(user)
    # Two tries (refused as empty forms, but tries all the same) use the two uploads of the hour.
    assert [browser.post("/videos/upload/", {"title": "x"}).status_code for _ in range(2)] == [400, 400]
    page = browser.post("/videos/upload/", {"title": "x"})
    assert page.status_code == 429 and page["Content-Type"].startswith("text/html")
    html = page.content.decode()
    assert 'id="upload-form"' in html and "Too many uploads: you may send 2/hour" in html
    assert "this file was not uploaded" in html and 3000 < int(page["Retry-After"]) <= 3600
    # The API's submit is the same count; reading is not an upload.
    api = _token_client(user)
    submit = api.post("/api/videos/", {"path": "/nowhere/clip.mp4"}, format="json")
    assert submit.status_code == 429 and int(submit["Retry-After"]) > 3000, submit.content
    assert api.get("/api/videos/").status_code == 200
    # Another user's uploads are their own.
    fresh = Client()
    fresh.force_login(make_user("moderator"))
    assert fresh.post("/videos/upload/", {"title": "x"}).status_code == 400


def test_a_large_upload_over_the_upload_rate_is_refused_before_its_file_is_read(make_user, settings, tmp_path):
    """The rate was counted by the form's view and the API's throttle, after the CSRF or NUL check had read (spooled
    to disk) the whole file: past their rate a user could still make the server write 500 MB per request, each
    answered 429 only then. Now the request-size middleware looks at the rate first. A NUL in a field: had the body
    been read, the NUL check would have answered 400 about it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # a large upload: past the form limit
    settings.MEDIA_ROOT = tmp_path
    settings.UPLOAD_RATE_LIMIT = "1/hour"
    user = make_user("moderator")
    browser = Client()
    browser.force_login(user)
    assert browser.post("/videos/upload/", {"title": "x"}).status_code == 400  # the hour's one upload (a try)

    def big() -> SimpleUploadedFile:
        return SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))

    refused = _token_client(user).post("/api/videos/", {"file": big(), "note": "a\x00b"}, format="multipart")
    assert refused.status_code == 429, (refused.status_code, refused.content[:300])
    assert "Too many uploads: you may send 1/hour" in refused.json()["detail"] and int(refused["Retry-After"]) > 3000
    # The browser's form: back to the page, saying why (not a bare 429 page).
    page = browser.post("/videos/upload/", {"file": big(), "title": "big"}, HTTP_ACCEPT="text/html")
    assert page.status_code == 303 and page["Location"] == "/videos/upload/" and int(page["Retry-After"]) > 3000
    assert "Too many uploads" in browser.get(page["Location"], follow=True).content.decode()
    # Another user's large upload is not refused by this one's rate (it reaches the NUL check: a 400).
    other = _token_client(make_user("moderator"))
    assert other.post("/api/videos/", {"file": big(), "note": "a\x00b"}, format="multipart").status_code == 400


def test_the_openapi_schema_declares_each_rate_in_its_429(make_user):
    client = Client()
    client.force_login(make_user("moderator"))
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]
    token = paths["/api/token/"]["post"]["responses"]["429"]
    assert "USER_API_RATE_LIMIT" in token["description"] and "Retry-After" in token["headers"]
    listed = paths["/api/videos/"]["get"]["responses"]["429"]["description"]
    assert "USER_API_RATE_LIMIT" in listed and "INTEGRATION_RATE_LIMIT" in listed and "UPLOAD" not in listed
    submit = paths["/api/videos/"]["post"]["responses"]["429"]["description"]
    assert "UPLOAD_RATE_LIMIT" in submit and "USER_API_RATE_LIMIT" in submit


def test_with_redis_unreachable_users_are_served_without_the_rate(make_user, settings, monkeypatch):
    """The counts live in Redis: down, a user's call and upload are served (logged), never a 500."""
    from tests.workbench.test_atomic_rates import UNREACHABLE_CACHE
    from workbench.throttles import UserRateThrottle

    settings.CACHES = {**settings.CACHES, "unreachable": UNREACHABLE_CACHE}
    monkeypatch.setattr(UserRateThrottle, "cache_alias", "unreachable")  # UploadRateThrottle inherits it
    settings.USER_API_RATE_LIMIT = "1/min"
    settings.UPLOAD_RATE_LIMIT = "1/hour"
    client = Client()
    client.force_login(make_user("moderator"))
    assert [client.get("/api/decisions/").status_code for _ in range(2)] == [200, 200]
    assert [client.post("/videos/upload/", {"title": "x"}).status_code for _ in range(2)] == [400, 400]


@pytest.mark.parametrize(
    ("name", "value"),
    [("UPLOAD_RATE_LIMIT", "60"), ("USER_API_RATE_LIMIT", "1200/ min"), ("INTEGRATION_RATE_LIMIT", "0/min")],
)
def test_a_rate_drf_cannot_read_stops_the_start_with_the_reason_not_every_api_call_with_a_500(name, value):
    """Read on each request, ``UPLOAD_RATE_LIMIT=60`` (no period) made every API call and upload a 500
    (``ValueError`` in DRF's ``parse_rate``); now the settings refuse it, naming the variable."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    child_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "workbench.settings", name: value}
    done = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.UPLOAD_RATE_LIMIT"],
        cwd=Path(__file__).resolve().parents[2],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and f"{name}={value!r} is not a request rate" in done.stderr
