"""Users' API tokens (``Authorization: Token <key>``): issued and rotated by ``POST /api/token/`` and by the "API
token" page, revoked on that page, refused with a 401 that says so once expired (API_TOKEN_LIFETIME_DAYS after they
were issued). Every new token and every revocation is sent as ``api_token_changed`` (the audit log records it).

A token has a scope (``ApiToken.Scope``): ``read`` tokens are refused any unsafe method (403 naming the scope) by
the token authentication itself, the one class every API view that takes a user's token lists, so no view's own
permission classes can forget the check."""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.dispatch import Signal
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request

from workbench.models import ApiToken
from workbench.text import has_unstorable, shown_text
from workbench.timewords import expires_in_text

if TYPE_CHECKING:
    from django.contrib.auth.models import User


TOKEN_PREFIX_LEN = 8

# A user's API token was made, replaced or revoked (sent inside that transaction). Keywords: user, action
# ("api_token.create", "api_token.rotate", "api_token.revoke"), by (the user who did it), payload (the old token's
# first characters, the new one's expiry; never a whole key). Moderation's review wing writes it to the audit log.
api_token_changed = Signal()


class CredentialRefused(exceptions.AuthenticationFailed):
    """A known credential refused for a reason its holder must hear (expired, switched off). Answered 401 with
    ``WWW-Authenticate: <scheme>`` and a JSON ``detail`` and ``code`` by the API's exception handler, whichever
    authentication class a view lists first (DRF would make it a 403 behind the session's)."""

    default_code = "credential_refused"

    def __init__(self, detail: str, *, scheme: str, code: str | None = None) -> None:
        super().__init__(detail)
        self.scheme = scheme
        self.code = code or self.default_code


class CredentialExpired(CredentialRefused):
    default_code = "token_expired"


def credential_expired_message(*, what: str, expired_at: datetime, remedy: str) -> str:
    return f"This {what} expired on {expired_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC. {remedy}"


def token_hash(key: str) -> str:
    """The one-way hash a token is stored as (users' API tokens and integrations' tokens): SHA-256, hex. A token is
    40+ random characters, so a plain hash is enough (no salt, no stretching), and it is looked up by equality."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A new API key: 40 hex characters (160 random bits), the length DRF's keys had."""
    return secrets.token_hex(20)


@dataclass(frozen=True)
class ApiTokenShown:
    """A user's API token as their page shows it: its first characters only, its scope, when it was made and
    expires, and its label (what it is for, given when it was issued)."""

    prefix: str
    scope: str
    created: datetime
    expires_at: datetime
    expired: bool
    # "in 90 days": whole calendar days to the expiry date (local time), the same on every render that day; a
    # ``timeuntil`` said "2 months, 4 weeks" right after creation and "2 months, 3 weeks" a second later.
    expires_in: str = ""
    label: str = ""


def api_token_of(*, user: User) -> ApiTokenShown | None:
    """``user``'s API token (its prefix, never its key), or None when they have none."""
    token = ApiToken.objects.filter(user=user).first()
    if token is None:
        return None
    return ApiTokenShown(
        prefix=token.prefix,
        scope=token.scope,
        created=token.created,
        expires_at=token.expires_at,
        expired=token.expires_at <= timezone.now(),
        expires_in=expires_in_text(token.expires_at),
        label=token.label,
    )


@dataclass(frozen=True)
class ApiTokenIssued:
    """The outcome of ``api_token_issue``: ``key`` is the new key (the only time it is readable), or "" when the
    user's valid token was kept (its key is not stored, so it cannot be given again)."""

    token: ApiToken
    key: str

    @property
    def expires_at(self) -> datetime:
        return self.token.expires_at


class ApiTokenScopeUnknown(ValueError):
    """A scope other than ``read`` or ``write`` was asked for; the message says which are."""


def api_token_scope_checked(value: str | None) -> str | None:
    """``value`` as a scope (``read``/``write``, any case, trimmed), None when not given; else ``ApiTokenScopeUnknown``."""
    if value is None or not str(value).strip():
        return None
    scope = str(value).strip().lower()
    if scope not in ApiToken.Scope.values:
        raise ApiTokenScopeUnknown(
            f"Unknown token scope {str(value)[:40]!r}: choose read (GET, HEAD and OPTIONS only) or write."
        )
    return scope


def _user_tokens_lock(user: User) -> None:
    """Inside the caller's transaction: wait for any other issue or revocation of ``user``'s token to commit. Locking
    the token row alone did not order them: with no token yet there was no row to lock, and a rotation waiting on the
    old row found it deleted and did not see the new one, so both inserted a token for the user (a 500 on the
    one-token-per-user constraint when Create was pressed twice, or two scripts asked at once)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"api-token:{user.pk}"])


# The longest lifetime a token may be given when it is issued (``lifetime_days``): as the setting's bound
# (``workbench.checks``), 100 years; past it the expiry date overflows what a datetime holds.
API_TOKEN_MAX_LIFETIME_DAYS = 36500
API_TOKEN_LABEL_MAX = 200


class ApiTokenRequestInvalid(ValueError):
    """A lifetime or label ``api_token_issue`` cannot take; the message says what it takes."""


@transaction.atomic
def api_token_issue(
    *,
    user: User,
    rotate: bool = False,
    scope: str | None = None,
    lifetime_days: int | None = None,
    label: str = "",
    via: str = "",
) -> ApiTokenIssued:
    """A new API token for ``user`` (the old one refused from now on) when they had none, it expired, or when
    ``rotate``; else their current one, without its key (``key`` ""). Only the key's hash is stored. A new one is
    recorded in the audit log (``api_token_changed``: "api_token.create" for a first one, "api_token.rotate" for a
    replacement).

    ``scope`` (``ApiToken.Scope``): the new token's; left out, a replacement keeps the old token's (rotating a
    read-only token never widens it unasked) and a first token is ``write``.

    ``label``: what the new token is for, kept on it (the token list shows it); left out, a replacement keeps the
    old token's.

    ``lifetime_days``: how long the new token is accepted (1 to ``API_TOKEN_MAX_LIFETIME_DAYS``), left out
    API_TOKEN_LIFETIME_DAYS. ``label`` (what the token is for) and ``via`` (where it was issued when its user did not
    ask for it themselves: ``manage.py create_api_token``) go into the audit event's payload; with ``via`` the event
    names no actor, since no signed-in person issued it. A bad lifetime or label is ``ApiTokenRequestInvalid``."""
    scope = api_token_scope_checked(scope)
    if lifetime_days is not None and not 1 <= lifetime_days <= API_TOKEN_MAX_LIFETIME_DAYS:
        raise ApiTokenRequestInvalid(
            f"A token's lifetime is 1 to {API_TOKEN_MAX_LIFETIME_DAYS} days, not {lifetime_days}."
        )
    label = shown_text(label).strip()
    if (
        len(label) > API_TOKEN_LABEL_MAX
        or has_unstorable(label)
        or any(unicodedata.category(ch) == "Cc" for ch in label)
    ):
        raise ApiTokenRequestInvalid(
            f"A token's label is one line of at most {API_TOKEN_LABEL_MAX} characters and no control characters (this one: {len(label)} characters)."
        )
    _user_tokens_lock(user)
    now = timezone.now()
    token = ApiToken.objects.select_for_update().filter(user=user).first()
    if token is not None and not rotate and token.expires_at > now:
        return ApiTokenIssued(token=token, key="")
    payload: dict[str, Any] = {}
    if token is not None:
        payload["old_token_prefix"] = token.prefix
        payload["old_token_expired"] = token.expires_at <= now
        payload["old_token_scope"] = token.scope
        scope = scope or token.scope
        label = label or token.label
        token.delete()
    key = new_api_key()
    token = ApiToken.objects.create(
        user=user,
        key_hash=token_hash(key),
        prefix=key[:TOKEN_PREFIX_LEN],
        created=now,
        expires_at=now + timedelta(days=lifetime_days or settings.API_TOKEN_LIFETIME_DAYS),
        scope=scope or ApiToken.Scope.WRITE,
        label=label,
    )
    payload["token_expires_at"] = token.expires_at.isoformat()
    payload["token_scope"] = token.scope
    if label:
        payload["label"] = label
    if via:
        payload["via"] = via
    action = "api_token.rotate" if "old_token_prefix" in payload else "api_token.create"
    api_token_changed.send(sender=ApiToken, user=user, action=action, by=None if via else user, payload=payload)
    return ApiTokenIssued(token=token, key=key)


@transaction.atomic
def api_token_revoke(*, user: User) -> bool:
    """Delete ``user``'s API token: refused from now on, and none until they make a new one. Recorded in the audit
    log; False (and nothing recorded) when they had none (a form posted twice)."""
    _user_tokens_lock(user)
    token = ApiToken.objects.select_for_update().filter(user=user).first()
    if token is None:
        return False
    prefix = token.prefix
    token.delete()
    api_token_changed.send(
        sender=ApiToken, user=user, action="api_token.revoke", by=user, payload={"old_token_prefix": prefix}
    )
    return True


def api_token_known(key: str) -> bool:
    """Whether ``key`` is a user's API token now valid (one indexed lookup of its hash; the request's body is not
    read): the check a large upload passes before its body is taken."""
    return ApiToken.objects.filter(
        key_hash=token_hash(key), expires_at__gt=timezone.now(), user__is_active=True
    ).exists()


# ``Authorization`` schemes (lower case) whose credential a large upload is checked against before its body is read,
# each with its check (the credential -> whether it is valid now, without reading the body). The API's own
# ``Token``; apps add theirs (moderation: ``Integration``) in ``AppConfig.ready``.
upload_credential_checks: dict[str, Callable[[str], bool]] = {"token": api_token_known}


# ``Authorization`` schemes (lower case) whose credential has a request rate of its own, each with its look at it:
# the credential -> None while it may send, else (seconds to wait, the sentence saying so); nothing is counted. A
# large upload with such a credential past its rate is refused before its body is read (the request-size middleware),
# as a user's past their upload rate is. Apps add theirs (moderation: ``Integration``) in ``AppConfig.ready``.
upload_rate_peeks: dict[str, Callable[[str], tuple[int, str] | None]] = {}


def upload_credential_valid(authorization: str) -> bool:
    """Whether an ``Authorization`` header carries a credential valid now, of a scheme in ``upload_credential_checks``
    (anything else, made-up text included, is not)."""
    parts = authorization.split()
    if len(parts) != 2:
        return False
    check = upload_credential_checks.get(parts[0].lower())
    return check is not None and check(parts[1])


def api_token_user_for(authorization: str) -> User | None:
    """The user whose valid API token ``authorization`` (``Token <key>``) carries, None for anything else; one
    indexed lookup, the body unread (the request-size middleware's look at their upload rate)."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "token":
        return None
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(parts[1]), expires_at__gt=timezone.now(), user__is_active=True)
        .first()
    )
    return token.user if token is not None else None


def api_token_scope_refusal(*, scope: str, method: str) -> str:
    """Why a token of ``scope`` may not send ``method`` (a read token's write), in words a script's author acts on."""
    return (
        f"This API token's scope is {scope}: it may only read (GET, HEAD, OPTIONS), not {method}. Use a token of "
        "scope write: make one on the API token page (/account/api-token/), or POST /api/token/ with "
        '{"rotate": true, "scope": "write"} from a signed-in session.'
    )


def api_token_scope_refusal_for(authorization: str, *, method: str) -> str:
    """The 403's words when ``authorization`` is ``Token <key>`` of a valid ``read`` token and ``method`` writes;
    "" otherwise. One indexed lookup of the key's hash, the body unread: a large upload sent with a read token is
    refused before the file is taken (the API would refuse it only once the NUL check had read, spooled, it)."""
    parts = authorization.split()
    if len(parts) != 2 or parts[0].lower() != "token" or method in SAFE_METHODS:
        return ""
    scope = (
        ApiToken.objects.filter(key_hash=token_hash(parts[1]), expires_at__gt=timezone.now(), user__is_active=True)
        .values_list("scope", flat=True)
        .first()
    )
    return api_token_scope_refusal(scope=scope, method=method) if scope and scope != ApiToken.Scope.WRITE else ""


class ExpiringTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>``, looked up by the key's hash; an expired token is refused with a 401 whose JSON
    ``detail`` says when and what to do. A ``read`` token sending anything but GET, HEAD or OPTIONS is refused here,
    403 naming its scope, whatever the view's permissions (every API view that takes a user's token lists this
    class, while each may list its own permission classes)."""

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        accepted = super().authenticate(request)
        if accepted is not None:
            token = accepted[1]
            if token.scope != ApiToken.Scope.WRITE and request.method not in SAFE_METHODS:
                raise exceptions.PermissionDenied(
                    api_token_scope_refusal(scope=token.scope, method=str(request.method))
                )
        return accepted

    def authenticate_credentials(self, key: str) -> tuple[Any, ApiToken]:
        token = ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        if token.expires_at <= timezone.now():
            remedy = "Sign in and POST /api/token/ for a new one."
            raise CredentialExpired(
                credential_expired_message(what="API token", expired_at=token.expires_at, remedy=remedy),
                scheme=self.keyword,
            )
        return token.user, token
