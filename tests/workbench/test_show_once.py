"""A new API token or integration token is shown once, on the page after the redirect. It used to wait for that page
in the session, in plain text in the session's row until the next page load (for good when the redirect was not
followed), and a page load that had read the session before the first one saved it (a second tab, a back navigation
replaying it) showed it again. Now the session never holds it (``workbench.show_once``)."""

from __future__ import annotations

import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from moderation.integrations.models import Integration
from moderation.integrations.services import integration_create
from workbench.redis_client import redis_for
from workbench.show_once import SHOW_ONCE_SECONDS

pytestmark = pytest.mark.django_db

PAGE = "/account/api-token/"


def _session_row(client: Client) -> Session:
    return Session.objects.get(pk=client.cookies["sessionid"].value)


def _held_anywhere(client: Client, secret: str) -> bool:
    """Whether ``secret`` is readable in the session (decoded) or, in plain text, in any of the shared Redis's
    show-once entries."""
    in_session = secret in repr(_session_row(client).get_decoded())
    redis = redis_for(alias="shared")
    in_redis = any(secret.encode() in (redis.get(key) or b"") for key in redis.scan_iter("*show-once:*"))
    return in_session or in_redis


def _shown_key(html: str) -> str | None:
    found = re.search(r'<code id="api-token-key" class="token-key">([^<]+)</code>', html)
    return found.group(1) if found else None


def test_a_new_api_token_is_never_in_the_session_and_a_replayed_page_load_does_not_show_it_again(make_user):
    client = Client()
    client.force_login(make_user("moderator"))
    redis = redis_for(alias="shared")
    earlier = set(redis.scan_iter("*show-once:*"))  # another test's redirect not followed, if any
    posted = client.post(PAGE, {"action": "create"})
    assert posted.status_code == 302
    stale = _session_row(client).session_data  # what a second tab, or a page load replayed, read of the session
    held = set(redis.scan_iter("*show-once:*")) - earlier
    assert all(0 < redis.ttl(entry) <= SHOW_ONCE_SECONDS for entry in held)
    page = client.get(PAGE)
    key = _shown_key(page.content.decode())
    assert key and page["Cache-Control"] == "no-store"
    # Between the post and the page that shows it (and for good, had the redirect not been followed) the session
    # held only a pad and a handle; the sealed key waited in Redis for at most SHOW_ONCE_SECONDS.
    assert key not in repr(Session(session_data=stale).get_decoded())
    assert len(held) == 1 and redis.ttl(held.pop()) == -2  # taken: gone
    assert not _held_anywhere(client, key)
    # The other page load saves the session as it read it, before this one was shown: the key is not shown again.
    Session.objects.filter(pk=client.cookies["sessionid"].value).update(session_data=stale)
    again = client.get(PAGE).content.decode()
    assert _shown_key(again) is None and key not in again
    assert not set(redis.scan_iter("*show-once:*")) - earlier


def test_a_new_integration_token_is_never_in_the_session_and_any_token_page_takes_it(make_user):
    client = Client()
    client.force_login(make_user("admin"))
    other, _ = integration_create(name="platform-elsewhere")
    assert client.post("/integrations/add/", {"name": "platform-new", "rate_limit": ""}).status_code == 302
    made = Integration.objects.get(name="platform-new")
    # The redirect not followed: another integration's token page shows nothing of it, and takes it away.
    elsewhere = client.get(f"/integrations/{other.pk}/token/").content.decode()
    assert "integration-token-gone" in elsewhere and 'id="integration-token"' not in elsewhere
    assert "integration-token-gone" in client.get(f"/integrations/{made.pk}/token/").content.decode()
    # Rotated: shown once on its page, never in the session; a replayed load of the session shows nothing.
    rotated = client.post(f"/integrations/{made.pk}/rotate/")
    assert rotated.status_code == 302
    stale = _session_row(client).session_data
    shown = client.get(rotated["Location"]).content.decode()
    token = re.search(r'<code id="integration-token">([^<]+)</code>', shown)
    assert token and "The old one is refused from now on." in shown and not _held_anywhere(client, token.group(1))
    assert token.group(1) not in repr(Session(session_data=stale).get_decoded())
    Session.objects.filter(pk=client.cookies["sessionid"].value).update(session_data=stale)
    again = client.get(rotated["Location"]).content.decode()
    assert token.group(1) not in again and "integration-token-gone" in again


def test_with_redis_unreachable_a_new_key_is_shown_in_the_answer_to_the_post_itself(make_user, settings):
    """Nowhere to hold it sealed: shown at once (not cached) rather than lost, and still not put in the session."""
    settings.CACHES = {
        **settings.CACHES,
        "shared": {**settings.REDIS_SHARED_CACHE, "LOCATION": "redis://127.0.0.1:9/0"},  # the discard port
    }
    client = Client()
    client.force_login(make_user("moderator"))
    answer = client.post(PAGE, {"action": "create"})
    key = _shown_key(answer.content.decode())
    assert answer.status_code == 200 and key and answer["Cache-Control"] == "no-store"
    assert key not in repr(_session_row(client).get_decoded())
    assert "Choose create, rotate or revoke" not in answer.content.decode()
