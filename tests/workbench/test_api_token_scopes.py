"""A user's API token has a scope: ``read`` (GET, HEAD, OPTIONS only) or ``write`` (all their role may do, what every
token could do before scopes, and still the default). A read token carried all of its user's write rights: a script
that only had to list decisions could submit videos with a leaked key."""

from __future__ import annotations

import re

import pytest
import yaml
from django.test import Client
from rest_framework.test import APIClient

from moderation.review.models import AuditEvent
from workbench.models import ApiToken

pytestmark = pytest.mark.django_db

PAGE = "/account/api-token/"


def _with_token(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def _session(user) -> Client:  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def test_a_read_token_reads_but_every_write_is_refused_403_naming_its_scope(make_user):
    moderator = make_user("moderator")  # a role that may submit videos
    issued = _session(moderator).post("/api/token/", {"scope": "read"}, content_type="application/json")
    assert issued.status_code == 200 and issued.json()["scope"] == "read"
    read = _with_token(issued.json()["token"])
    assert read.get("/api/decisions/").status_code == 200
    assert read.head("/api/videos/").status_code == 200
    assert read.options("/api/videos/").status_code == 200

    refused = read.post("/api/videos/", {"path": "/nowhere/clip.mp4"}, format="json")
    assert refused.status_code == 403, refused.content
    assert refused["Content-Type"].startswith("application/json")
    detail = refused.json()["detail"]
    assert "scope is read" in detail and "POST" in detail and "scope write" in detail
    # The same user's write token passes the scope and reaches the view (which refuses the path itself: a 400).
    rotated = _session(moderator).post(
        "/api/token/", {"rotate": True, "scope": "write"}, content_type="application/json"
    )
    assert rotated.json()["scope"] == "write"
    write = _with_token(rotated.json()["token"])
    assert write.post("/api/videos/", {"path": "/nowhere/clip.mp4"}, format="json").status_code == 400


def test_scope_defaults_to_write_a_rotation_keeps_it_and_an_unknown_one_is_a_400(make_user):
    user = make_user("moderator")
    session = _session(user)
    first = session.post("/api/token/").json()
    assert first["scope"] == "write" and ApiToken.objects.get(user=user).scope == "write"
    kept = session.post("/api/token/", {"scope": "read"}, content_type="application/json")
    assert kept.status_code == 409 and "scope write" in kept.json()["detail"]

    read = session.post("/api/token/", {"rotate": True, "scope": "read"}, content_type="application/json").json()
    assert read["scope"] == "read"
    # Rotating a read token without naming a scope never widens it.
    again = session.post("/api/token/", {"rotate": True}, content_type="application/json").json()
    assert again["scope"] == "read" and ApiToken.objects.get(user=user).scope == "read"
    event = AuditEvent.objects.filter(action="api_token.rotate").order_by("-pk").first()
    assert event is not None and event.payload["token_scope"] == "read" and event.payload["old_token_scope"] == "read"

    bad = session.post("/api/token/", {"rotate": True, "scope": "admin"}, content_type="application/json")
    assert bad.status_code == 400 and "choose read" in bad.json()["scope"][0]
    assert ApiToken.objects.get(user=user).prefix == again["token"][:8]  # nothing replaced


def test_the_api_token_page_chooses_and_shows_the_scope(make_user):
    user = make_user("labeler")
    client = _session(user)
    page = client.get(PAGE).content.decode()
    assert 'name="scope" value="read"' in page and 'name="scope" value="write" checked' in page
    made = client.post(PAGE, {"action": "create", "scope": "read"}, follow=True).content.decode()
    key = re.search(r'<code id="api-token-key" class="token-key">([^<]+)</code>', made)
    assert key and ApiToken.objects.get(user=user).scope == "read"
    assert '<p id="new-token-scope">Scope: <strong>read</strong>' in made
    assert '<strong id="api-token-scope">read</strong> (GET, HEAD, OPTIONS only)' in made
    # The rotate form offers the current scope first.
    assert 'name="scope" value="read" checked' in made
    assert client.post(PAGE, {"action": "rotate", "scope": "everything"}).status_code == 400
    assert ApiToken.objects.get(user=user).prefix == key.group(1)[:8]


def test_the_openapi_schema_documents_the_scope(make_user):
    schema = yaml.safe_load(_session(make_user("moderator")).get("/api/schema/").content)
    components = schema["components"]["schemas"]
    request_scope = components["ApiTokenRequest"]["properties"]["scope"]
    answer = components["ApiToken"]["properties"]["scope"]
    for field in (request_scope, answer):
        ref = (field.get("allOf") or [field])[0]["$ref"]
        assert ref == "#/components/schemas/ApiTokenScopeEnum"
    assert set(components["ApiTokenScopeEnum"]["enum"]) == {"read", "write"}
    operation = schema["paths"]["/api/token/"]["post"]
    assert "GET, HEAD and OPTIONS only" in operation["description"] and "400" in operation["responses"]


def test_a_large_upload_with_a_read_token_is_refused_before_its_file_is_read(make_user, settings, tmp_path):
    """Past the form limit the request-size middleware checks the token before the body is read (pass 5): a read
    token passed that check and the file was spooled to disk, only for the API to refuse it. A NUL in a field: had
    the body been read, the NUL check would have answered 400 about it."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    settings.MEDIA_ROOT = tmp_path
    key = _session(make_user("moderator")).post("/api/token/", {"scope": "read"}, content_type="application/json")
    big = SimpleUploadedFile("big.mp4", b"\x00\x00\x00\x18ftypmp42" + b"v" * (256 * 1024))
    refused = Client().post(
        "/api/videos/", {"file": big, "note": "a\x00b"}, HTTP_AUTHORIZATION=f"Token {key.json()['token']}"
    )
    assert refused.status_code == 403, (refused.status_code, refused.content[:300])
    assert "scope is read" in refused.json()["detail"]
