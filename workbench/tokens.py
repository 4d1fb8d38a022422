"""Users' API tokens (``Authorization: Token <key>``): issued and rotated by ``POST /api/token/`` and by the "API
token" page, revoked on that page, refused with a 401 that says so once expired (API_TOKEN_LIFETIME_DAYS after they
were issued). Every new token and every revocation is sent as ``api_token_changed`` (the audit log records it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from workbench.models import ApiTokenExpiry

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


def api_token_expires_at(token: Token) -> datetime:
    """When ``token`` stops being accepted: its own expiry, else (a token made in Django's admin) one lifetime after
    it was made."""
    try:
        return token.expiry.expires_at  # type: ignore[attr-defined,no-any-return]
    except ApiTokenExpiry.DoesNotExist:
        return token.created + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)


@dataclass(frozen=True)
class ApiTokenShown:
    """A user's API token as their page shows it: its first characters only, when it was made and expires."""

    prefix: str
    created: datetime
    expires_at: datetime
    expired: bool
    # "in 90 days": whole calendar days to the expiry date (local time), the same on every render that day; a
    # ``timeuntil`` said "2 months, 4 weeks" right after creation and "2 months, 3 weeks" a second later.
    expires_in: str = ""


def expires_in_text(expires_at: datetime, *, now: datetime | None = None) -> str:
    """When ``expires_at`` comes, as whole calendar days from today (local time): "today", "tomorrow", "in N days"."""
    days = (timezone.localdate(expires_at) - timezone.localdate(now or timezone.now())).days
    if days <= 0:
        return "today"
    return "tomorrow" if days == 1 else f"in {days} days"


def api_token_of(*, user: User) -> ApiTokenShown | None:
    """``user``'s API token (without its key), or None when they have none."""
    token = Token.objects.select_related("expiry").filter(user=user).first()
    if token is None:
        return None
    expires_at = api_token_expires_at(token)
    return ApiTokenShown(
        prefix=token.key[:TOKEN_PREFIX_LEN],
        created=token.created,
        expires_at=expires_at,
        expired=expires_at <= timezone.now(),
        expires_in=expires_in_text(expires_at),
    )


@transaction.atomic
def api_token_issue(*, user: User, rotate: bool = False) -> tuple[Token, datetime]:
    """``user``'s API token and when it expires: the current one while it is valid; a new one (the old one refused
    from now on) when there was none, it expired, or when ``rotate``. A new one is recorded in the audit log
    (``api_token_changed``: "api_token.create" for a first one, "api_token.rotate" for a replacement)."""
    now = timezone.now()
    token = Token.objects.select_for_update(of=("self",)).select_related("expiry").filter(user=user).first()
    if token is not None and not rotate and (expires_at := api_token_expires_at(token)) > now:
        return token, expires_at
    payload: dict[str, Any] = {}
    if token is not None:
        payload["old_token_prefix"] = token.key[:TOKEN_PREFIX_LEN]
        payload["old_token_expired"] = api_token_expires_at(token) <= now
        token.delete()
    token = Token.objects.create(user=user)
    expiry = ApiTokenExpiry.objects.create(
        token=token, expires_at=now + timedelta(days=settings.API_TOKEN_LIFETIME_DAYS)
    )
    payload["token_expires_at"] = expiry.expires_at.isoformat()
    action = "api_token.rotate" if "old_token_prefix" in payload else "api_token.create"
    api_token_changed.send(sender=Token, user=user, action=action, by=user, payload=payload)
    return token, expiry.expires_at


@transaction.atomic
def api_token_revoke(*, user: User) -> bool:
    """Delete ``user``'s API token: refused from now on, and none until they make a new one. Recorded in the audit
    log; False (and nothing recorded) when they had none (a form posted twice)."""
    token = Token.objects.select_for_update().filter(user=user).first()
    if token is None:
        return False
    prefix = token.key[:TOKEN_PREFIX_LEN]
    token.delete()
    api_token_changed.send(
        sender=Token, user=user, action="api_token.revoke", by=user, payload={"old_token_prefix": prefix}
    )
    return True


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's ``Token`` authentication that refuses an expired token (401, JSON ``detail`` saying when and what to do)."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        token = Token.objects.select_related("user", "expiry").filter(key=key).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        expires_at = api_token_expires_at(token)
        if expires_at <= timezone.now():
            remedy = "Sign in and POST /api/token/ for a new one."
            raise CredentialExpired(
                credential_expired_message(what="API token", expired_at=expires_at, remedy=remedy), scheme=self.keyword
            )
        return token.user, token
