"""Integration and user API tokens expire (401 saying so, rotated by a command, a screen action or the token API),
and admins switch an integration off and on from its screen (confirmed, audited, CSRF-checked, htmx fragment)."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import formats, timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from moderation.integrations.models import Integration
from moderation.integrations.services import integration_create
from moderation.review.models import AuditEvent
from workbench.models import ApiToken
from workbench.tokens import token_hash

pytestmark = pytest.mark.django_db

DECISIONS = "/api/decisions/"
FEEDBACK = "/api/feedback/events/"


def _as_platform(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Integration {token}")
    return client


def test_an_expired_integration_token_is_a_401_saying_so_until_it_is_rotated(settings):
    """Integration tokens never expired: a token leaked years ago still worked. Now each has an expiry (a lifetime
    from INTEGRATION_TOKEN_LIFETIME_DAYS); past it every integration route answers 401 with the date and what to do,
    and ``rotate_integration_token`` prints a new one (the old one refused from then on)."""
    settings.INTEGRATION_TOKEN_LIFETIME_DAYS = 30
    integration, token = integration_create(name="platform-expiring")
    assert timedelta(days=29) < integration.token_expires_at - timezone.now() <= timedelta(days=30)
    assert _as_platform(token).get(DECISIONS).status_code == 200
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))
    for url, method in ((DECISIONS, "get"), (FEEDBACK, "post")):
        refused = getattr(_as_platform(token), method)(url, [] if method == "post" else None, format="json")
        assert refused.status_code == 401, (url, refused.status_code)
        assert refused.json()["code"] == "token_expired"
        assert "This integration token expired on" in refused.json()["detail"]
        assert refused["WWW-Authenticate"].startswith("Integration")
    out = io.StringIO()
    call_command("rotate_integration_token", "platform-expiring", stdout=out, stderr=io.StringIO())
    new = out.getvalue().strip()
    assert new != token and _as_platform(new).get(DECISIONS).status_code == 200
    assert _as_platform(token).get(DECISIONS).status_code in (401, 403)
    assert AuditEvent.objects.filter(action="integration.token_rotate", object_id=str(integration.pk)).exists()


def test_a_user_api_token_expires_and_post_api_token_gives_a_new_one(make_user, settings):
    """Users' tokens (POST /api/token/) never expired either. They expire after API_TOKEN_LIFETIME_DAYS (401 with the
    reason); POST /api/token/ with the session gives a new one once expired, or on ``rotate``."""
    settings.API_TOKEN_LIFETIME_DAYS = 7
    session = Client()
    session.force_login(make_user("moderator"))
    issued = session.post("/api/token/").json()
    key = issued["token"]
    assert session.post("/api/token/").status_code == 409  # the same while valid (its key is not stored)
    assert "expires_at" in issued
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get(DECISIONS).status_code == 200
    ApiToken.objects.filter(key_hash=token_hash(key)).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = api.get(DECISIONS)
    assert refused.status_code == 401 and refused.json()["code"] == "token_expired"
    assert "This API token expired on" in refused.json()["detail"] and "POST /api/token/" in refused.json()["detail"]
    renewed = session.post("/api/token/").json()["token"]
    assert renewed != key
    rotated = session.post("/api/token/", {"rotate": "true"}).json()["token"]
    assert rotated != renewed and not ApiToken.objects.filter(key_hash=token_hash(renewed)).exists()
    # Django's admin lists each token with when it expires.
    root = Client()
    root.force_login(User.objects.create_superuser("root-tokens", "root@example.com", "pw-test-123"))
    listed = root.get("/admin/workbench/apitoken/").content.decode()
    expires_at = ApiToken.objects.get(key_hash=token_hash(rotated)).expires_at
    assert (
        rotated[:8] in listed
        and rotated not in listed
        and formats.date_format(timezone.localtime(expires_at), "DATETIME_FORMAT") in listed
    )


def test_tokens_issued_before_expiry_existed_keep_working_for_one_lifetime(make_user, settings):
    """The migrations give the tokens already out one lifetime from the day 0002 ran, instead of cutting off the
    scripts and platforms that use them; 0003 then keeps that expiry when it hashes them (here a clear DRF token
    made without an expiry, 400 days ago, given the expiry 0002 gives)."""
    from importlib import import_module

    settings.API_TOKEN_LIFETIME_DAYS = 90
    old = Token.objects.create(user=make_user("moderator"))
    Token.objects.filter(pk=old.pk).update(created=timezone.now() - timedelta(days=400))
    one_lifetime = timezone.now() + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    hash_tokens = import_module("workbench.migrations.0003_api_tokens_hashed").hash_tokens
    assert hash_tokens(Token, ApiToken, lambda token: one_lifetime) == 1
    expires_at = ApiToken.objects.get(key_hash=token_hash(old.key)).expires_at
    assert timedelta(days=89) < expires_at - timezone.now() <= timedelta(days=90)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {old.key}")
    assert api.get(DECISIONS).status_code == 200


def _csrf_client(user) -> tuple[Client, str]:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    page = client.get("/integrations/")
    assert page.status_code == 200
    return client, client.cookies["csrftoken"].value


def test_an_admin_switches_an_integration_off_and_on_from_its_screen(make_user):
    """Integrations could be switched off only from a shell. The integrations screen asks to confirm (an htmx
    fragment, or the page without JavaScript), switches with a CSRF-checked POST, records who did it in the audit
    log, and a switched-off integration's API calls answer 401 saying it is switched off."""
    admin = make_user("admin")
    integration, token = integration_create(name="platform-switch")
    client, csrf = _csrf_client(admin)
    url = f"/integrations/{integration.pk}/switch/"
    asked = client.get(url, {"to": "off"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in asked and "Yes, switch it off" in asked and "its token is refused" in asked
    assert "Yes, switch it off" in client.get(url, {"to": "off"}).content.decode()  # without JavaScript: the page
    assert client.post(url, {"to": "off"}).status_code == 403  # no CSRF token
    assert Integration.objects.get(pk=integration.pk).is_active
    done = client.post(url, {"to": "off"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf).content.decode()
    assert "<html" not in done and "is switched off" in done and "Switch on…" in done
    assert not Integration.objects.get(pk=integration.pk).is_active
    refused = _as_platform(token).get(DECISIONS)
    assert refused.status_code == 401 and refused.json()["code"] == "integration_switched_off"
    assert "“platform-switch” is switched off" in refused.json()["detail"]
    again = client.post(url, {"to": "off"}, HTTP_X_CSRFTOKEN=csrf)  # a second post (no JavaScript) changes nothing
    assert again.status_code == 302
    events = AuditEvent.objects.filter(object_type="integration", object_id=str(integration.pk))
    events = events.exclude(action="integration.create")  # made by the fixture's integration_create
    assert list(events.values_list("action", "actor_name")) == [("integration.switch_off", admin.username)]
    client.post(url, {"to": "on"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=csrf)
    assert _as_platform(token).get(DECISIONS).status_code == 200
    assert events.first().action == "integration.switch_on"  # type: ignore[union-attr]
    assert "Switched off" not in client.get("/integrations/").content.decode()


def test_an_admin_rotates_a_token_on_the_screen_and_sees_the_new_one_once(make_user):
    """The integrations screen shows when each token expires and rotates it: the new token is shown once, the old
    one is refused at once."""
    integration, token = integration_create(name="platform-rotate")
    client = Client()
    client.force_login(make_user("admin"))
    page = client.get("/integrations/").content.decode()
    day = formats.date_format(integration.token_expires_at, "j M Y")
    assert f'UTC">{day}</time>, in ' in page and "Rotate token" in page
    shown = client.post(f"/integrations/{integration.pk}/rotate/", follow=True).content.decode()
    new = re.search(r'<code id="integration-token">([^<]+)</code>', shown)
    assert new and "The old one is refused from now on." in shown
    assert _as_platform(new.group(1)).get(DECISIONS).status_code == 200
    assert _as_platform(token).get(DECISIONS).status_code in (401, 403)
    assert "integration-token-gone" in client.get(f"/integrations/{integration.pk}/token/").content.decode()
    assert "rotate it soon" not in client.get("/integrations/").content.decode()
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() + timedelta(days=10))
    assert "rotate it soon" in client.get("/integrations/").content.decode()
    Integration.objects.filter(pk=integration.pk).update(token_expires_at=timezone.now() - timedelta(days=1))
    assert "expired " in client.get("/integrations/").content.decode()


def test_creating_an_integration_is_in_the_audit_log_with_who_did_it(client_as):
    # Rotating a token and switching an integration were logged; issuing its first token was not.
    admin = client_as("admin")

    response = admin.post("/integrations/add/", {"name": "shop-tv", "rate_limit": "120/min"})

    assert response.status_code == 302  # to the page that shows the token once
    integration = Integration.objects.get(name="shop-tv")
    event = AuditEvent.objects.get(action="integration.create", object_id=str(integration.pk))
    assert event.actor is not None and event.actor.groups.filter(name="admin").exists()
    assert event.object_type == "integration"
    assert event.payload["name"] == "shop-tv" and event.payload["rate_limit"] == "120/min"
    assert event.payload["token_prefix"] == integration.token_prefix
    call_command("create_integration", "cms", stdout=io.StringIO())
    assert AuditEvent.objects.get(action="integration.create", payload__name="cms").actor is None


def test_a_token_a_year_off_says_its_date_and_in_a_year_on_both_pages(make_user, settings):
    """Walked: a one-year token read "expires 2027-12-05 15:42 (in 11 months, 4 weeks)" (Django's ``timeuntil``).
    It is its date and a plain approximation, said the same way on the integrations list and the token page."""
    settings.INTEGRATION_TOKEN_LIFETIME_DAYS = 365
    client = Client()
    client.force_login(make_user("admin"))
    client.post("/integrations/add/", {"name": "platform-yearly", "rate_limit": ""})
    integration = Integration.objects.get(name="platform-yearly")
    day = formats.date_format(integration.token_expires_at, "j M Y")
    said = f'UTC">{day}</time>, in a year'
    shown = client.get(f"/integrations/{integration.pk}/token/").content.decode()
    assert "It expires <time datetime=" in shown and f"{said}; rotate it before then." in shown
    listed = client.get("/integrations/").content.decode()
    assert "expires <time datetime=" in listed and said in listed
    assert "months," not in shown + listed and "weeks" not in shown + listed

    from workbench.timewords import expires_in_text

    now = timezone.now()
    assert expires_in_text(now + timedelta(days=365), now=now) == "in a year"
    assert expires_in_text(now + timedelta(days=364), now=now) == "in a year"
    assert expires_in_text(now + timedelta(days=150), now=now) == "in about 5 months"
    assert expires_in_text(now + timedelta(days=90), now=now) == "in 90 days"
    assert expires_in_text(now + timedelta(days=730), now=now) == "in about 2 years"
