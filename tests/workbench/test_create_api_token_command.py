"""``manage.py create_api_token``: a service account's API token from the command line, issued by the service behind
the API token page (hashed, expiring, scoped, audited), its key printed once; DRF's ``drf_create_token``, whose keys
this API refused, replaced by a refusal naming it."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.management import CommandError, call_command, get_commands
from django.utils import timezone
from rest_framework.authtoken.models import Token, TokenProxy
from rest_framework.test import APIClient

from moderation.review.models import AuditEvent
from workbench.models import ApiToken
from workbench.tokens import token_hash

pytestmark = pytest.mark.django_db

DECISIONS = "/api/decisions/"


def _issue(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_token", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _status(key: str, method: str = "get") -> int:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return int(getattr(api, method)(DECISIONS, {}, format="json").status_code)


def test_the_command_issues_a_hashed_expiring_audited_token_the_api_takes(make_user) -> None:
    bot = make_user("admin", username="ingest-bot")
    out, err = _issue("--user", "ingest-bot", "--label", "nightly ingest script", "--expires-days", "7")
    key = out.strip()
    assert len(key) == 40 and out == f"{key}\n"  # the key alone on stdout
    token = ApiToken.objects.get(user=bot)
    assert token.key_hash == token_hash(key) and token.prefix == key[:8] and key not in err
    assert timedelta(days=6, hours=23) < token.expires_at - timezone.now() <= timedelta(days=7)
    assert token.scope == "write" and f"{key[:8]}…" in err and "shown this once" in err
    assert _status(key) == 200
    event = AuditEvent.objects.get(action="api_token.create", object_id=str(bot.pk))
    assert event.actor is None and event.payload["label"] == "nightly ingest script"
    assert event.payload["via"] == "manage.py create_api_token" and key not in str(event.payload)


def test_a_user_holding_a_valid_token_is_refused_without_rotate_and_rotate_replaces_it(make_user) -> None:
    make_user("moderator", username="reporter")
    first = _issue("--user", "reporter", "--label", "dashboards", "--scope", "read")[0].strip()
    with pytest.raises(CommandError, match=r"has a valid API token \(" + first[:8] + r"….*--rotate"):
        _issue("--user", "reporter", "--label", "again")
    assert _status(first) == 200
    second = _issue("--user", "reporter", "--label", "dashboards, rotated", "--rotate")[0].strip()
    assert second != first and _status(first) == 401 and _status(second) == 200
    assert ApiToken.objects.get(user__username="reporter").scope == "read"  # a rotation keeps the scope
    assert _status(second, "post") == 403  # read only
    assert AuditEvent.objects.filter(action="api_token.rotate", payload__label="dashboards, rotated").exists()


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--user", "nobody", "--label", "x"), "No user named 'nobody'"),
        (("--user", "gone", "--label", "x"), "User 'gone' is inactive"),
        (("--user", "svc", "--label", "x", "--expires-days", "0"), "lifetime is 1 to 36500 days, not 0"),
        (("--user", "svc", "--label", "x", "--expires-days", "99999999"), "lifetime is 1 to 36500 days"),
        (("--user", "svc", "--label", "x", "--scope", "admin"), "Unknown token scope 'admin'"),
        (("--user", "svc", "--label", "two\nlines"), "label is one line"),
        (("--user", "svc", "--label", "x" * 201), "at most 200 characters"),
    ],
)
def test_what_the_command_cannot_do_is_refused_in_words_and_issues_nothing(make_user, args, said) -> None:  # type: ignore[no-untyped-def]
    make_user("admin", username="svc")
    make_user("admin", username="gone", is_active=False)
    with pytest.raises(CommandError, match=said):
        _issue(*args)
    assert not ApiToken.objects.exists() and not AuditEvent.objects.filter(action__startswith="api_token.").exists()


def test_drf_create_token_is_ours_and_refuses_naming_create_api_token(make_user) -> None:
    make_user("admin", username="svc")
    assert get_commands()["drf_create_token"] == "workbench"
    for args in (("svc",), ("svc", "--reset"), ()):
        with pytest.raises(CommandError, match=r"Use: manage.py create_api_token --user (svc|NAME) --label"):
            call_command("drf_create_token", *args)
    assert not Token.objects.exists() and not ApiToken.objects.exists()
    # Listing authtoken after our apps keeps DRF's token admin (keys in clear) out of the admin.
    assert not admin.site.is_registered(TokenProxy) and admin.site.is_registered(ApiToken)


def test_the_label_given_at_issue_is_kept_on_the_token_and_shown_in_the_token_list(make_user) -> None:
    """Walk hui22: the label given when a token was issued was only in the audit event's payload; the admin's token
    list named none of the service accounts' tokens. It is kept on the token, a column of the list and on the user's
    page; a rotation without one keeps the old token's."""
    from django.contrib.auth.models import User
    from django.test import Client

    bot = make_user("admin", username="label-bot")
    key = _issue("--user", "label-bot", "--label", "nightly <ingest> script")[0].strip()
    assert ApiToken.objects.get(user=bot).label == "nightly <ingest> script"

    root = Client()
    root.force_login(User.objects.create_superuser("root-labels", "root@example.com", "pw-test-123"))
    listed = root.get("/admin/workbench/apitoken/").content.decode()
    assert ">Label</a>" in listed and '<td class="field-label">nightly &lt;ingest&gt; script</td>' in listed

    own = Client()
    own.force_login(bot)
    page = own.get("/account/api-token/").content.decode()
    assert f'<code>{key[:8]}…</code> <span id="api-token-label">(“nightly &lt;ingest&gt; script”)</span>' in page

    _issue("--user", "label-bot", "--label", "", "--rotate")
    assert ApiToken.objects.get(user=bot).label == "nightly <ingest> script"
    _issue("--user", "label-bot", "--label", "weekly export", "--rotate")
    assert ApiToken.objects.get(user=bot).label == "weekly export"
