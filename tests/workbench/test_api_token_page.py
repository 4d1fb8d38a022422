"""A signed-in user's "API token" page (from the user menu): whether they have a token and when it expires; create,
rotate (the new key shown once) and revoke, through the same service as ``POST /api/token/``, each in the audit log."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from moderation.review.models import AuditEvent
from workbench.models import ApiToken
from workbench.tokens import token_hash

pytestmark = pytest.mark.django_db

PAGE = "/account/api-token/"
DECISIONS = "/api/decisions/"


def _works(key: str) -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api.get(DECISIONS).status_code


def _shown_key(html: str) -> str | None:
    found = re.search(r'<code id="api-token-key" class="token-key">([^<]+)</code>', html)
    return found.group(1) if found else None


def test_a_user_creates_sees_rotates_and_revokes_their_api_token_on_its_page(make_user, settings):
    settings.API_TOKEN_LIFETIME_DAYS = 30
    user = make_user("moderator")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    home = client.get("/").content.decode()
    assert f'href="{PAGE}"' in home  # in the user's menu
    page = client.get(PAGE)
    assert page.status_code == 200 and "You have no API token." in page.content.decode()
    csrf = client.cookies["csrftoken"].value
    assert client.post(PAGE, {"action": "create"}).status_code == 403  # CSRF-checked
    assert not ApiToken.objects.filter(user=user).exists()

    made = client.post(PAGE, {"action": "create"}, HTTP_X_CSRFTOKEN=csrf, follow=True)
    html = made.content.decode()
    key = _shown_key(html)
    assert key and token_hash(key) == ApiToken.objects.get(user=user).key_hash and _works(key) == 200
    assert made["Cache-Control"] == "no-store"
    assert "this page does not show it again" in html and 'data-copy="#api-token-key"' in html
    expires_at = ApiToken.objects.get(user=user).expires_at
    assert timedelta(days=29) < expires_at - timezone.now() <= timedelta(days=30)
    assert f"<code>{key[:8]}…</code>" in html and f"expires {timezone.localtime(expires_at):%Y-%m-%d %H:%M}" in html
    # The API keeps the same token (one rule for both), and cannot give its key again: not stored.
    kept = client.post("/api/token/", HTTP_X_CSRFTOKEN=csrf)
    assert kept.status_code == 409 and key not in kept.content.decode() and key[:8] in kept.json()["detail"]
    again = client.get(PAGE).content.decode()
    assert _shown_key(again) is None and key not in again  # shown once
    # The same phrase on both renders (``timeuntil`` said "4 weeks, 2 days", then "4 weeks, 1 day").
    assert "(in 30 days)" in html and "(in 30 days)" in again
    # The create form posted a second time keeps that token and does not show it again.
    twice = client.post(PAGE, {"action": "create"}, HTTP_X_CSRFTOKEN=csrf, follow=True).content.decode()
    assert (
        ApiToken.objects.get(user=user).key_hash == token_hash(key)
        and key not in twice
        and "You have a token already" in twice
    )

    rotated = client.post(PAGE, {"action": "rotate"}, HTTP_X_CSRFTOKEN=csrf, follow=True).content.decode()
    new = _shown_key(rotated)
    assert new and new != key and "The old token is refused from now on." in rotated
    assert _works(new) == 200 and _works(key) in (401, 403)

    revoked = client.post(PAGE, {"action": "revoke"}, HTTP_X_CSRFTOKEN=csrf, follow=True).content.decode()
    assert "Your API token is revoked" in revoked and "You have no API token." in revoked
    assert _works(new) in (401, 403) and not ApiToken.objects.exists()
    assert client.post(PAGE, {"action": "steal"}, HTTP_X_CSRFTOKEN=csrf).status_code == 400

    events = AuditEvent.objects.filter(object_type="user", object_id=str(user.pk)).order_by("at", "pk")
    assert [(e.action, e.actor_name) for e in events] == [
        ("api_token.create", user.username),
        ("api_token.rotate", user.username),
        ("api_token.revoke", user.username),
    ]
    rotate = events[1]
    assert rotate.payload["old_token_prefix"] == key[:8] and rotate.payload["old_token_expired"] is False
    assert "token_expires_at" in rotate.payload
    assert not any(key in str(e.payload) or new in str(e.payload) for e in events)  # never a whole key


def test_an_expired_token_says_so_and_the_api_rotation_is_audited_too(make_user):
    user = make_user("labeler")
    client = Client()
    client.force_login(user)
    key = client.post("/api/token/").json()["token"]
    ApiToken.objects.filter(key_hash=token_hash(key)).update(expires_at=timezone.now() - timedelta(hours=1))
    html = client.get(PAGE).content.decode()
    assert "expired" in html and "it is refused (401)" in html and "Make a new token" in html
    renewed = client.post("/api/token/").json()["token"]
    assert renewed != key
    actions = list(
        AuditEvent.objects.filter(object_type="user", object_id=str(user.pk))
        .order_by("at", "pk")
        .values_list("action", "payload__old_token_expired")
    )
    assert actions == [("api_token.create", None), ("api_token.rotate", True)]


def test_the_api_token_page_asks_to_sign_in_first():
    response = Client().get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_tokens_expiry_reads_in_whole_calendar_days_the_same_all_day():
    from workbench.tokens import expires_in_text

    now = timezone.make_aware(datetime(2026, 12, 5, 10, 0))
    made = now + timedelta(days=90)
    assert expires_in_text(made, now=now) == "in 90 days"
    assert expires_in_text(made, now=now + timedelta(seconds=1)) == "in 90 days"
    assert expires_in_text(made - timedelta(seconds=1), now=now) == "in 90 days"
    assert expires_in_text(now + timedelta(days=1), now=now) == "tomorrow"
    assert expires_in_text(now + timedelta(hours=1), now=now) == "today"


def test_the_admin_names_the_tokens_api_tokens(make_user):
    """Walked (hui20): the admin's index and its token list said "Api tokens" (Django's name from the class name)."""
    from django.contrib.auth.models import User

    root = Client()
    root.force_login(User.objects.create_superuser("root-names", "root@example.com", "pw-test-123"))
    index = root.get("/admin/").content.decode()
    listed = root.get("/admin/workbench/apitoken/").content.decode()
    assert ">API tokens<" in index and "Api token" not in index
    assert "Select API token to view" in listed and "Api token" not in listed
