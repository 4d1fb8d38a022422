"""Sign-in throttling: wrong passwords are counted per account and address, and per address over all accounts
(in the shared ``throttle`` cache, so every web process sees one count); past either limit a sign-in from that
address is refused before the password is checked, on the sign-in page and the admin's alike. Without it a
password could be guessed at the speed of the server.

Per account *and* address (10 in 15 minutes), not per account alone: someone else's wrong guesses never lock a
user out from their own address. Per address over all accounts (``SIGNIN_FAILURES_PER_ADDRESS``, 100 by default):
one address trying one password on every account (password spraying) stays under the first limit on each account;
this one stops it. It is generous and counts only wrong passwords (a successful sign-in neither counts nor clears
it, else an attacker's own account would reset it), so an office behind one NAT address never meets it in normal
use. Behind the TLS-terminating proxy (``WORKBENCH_HTTPS``) every request comes from the proxy, so the address is
the one the proxy appended to ``X-Forwarded-For`` (the last entry: earlier ones are the client's to write).

Spraying from many addresses, each under both limits, looks like typos to any one count; a per-account limit over all
addresses would let anyone lock a colleague out. So it is left to the operators: every wrong password and every
refusal counts on ``/metrics`` (``workbench_signin_failures``), whose rate over all addresses is what to alert on."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from redis.exceptions import RedisError

from workbench.forms import NulCheckedForm
from workbench.metrics import SIGNIN_FAILURES

logger = logging.getLogger(__name__)
T = TypeVar("T")

WINDOW_SECONDS = 15 * 60
FAILURES_PER_ACCOUNT_AND_ADDRESS = 10


def _counted(operation: Callable[[], T], fallback: T) -> T:
    """A count in the shared cache, or ``fallback`` when Redis cannot be reached: sign-in then goes on without the
    throttle (logged), rather than failing for everyone with a server error while Redis is down."""
    try:
        return operation()
    except (RedisError, OSError) as exc:
        logger.warning("Sign-in throttle skipped: the shared cache is unreachable (%s)", exc)
        return fallback


def _key(username: str, address: str) -> str:
    return "signin-fail:" + hashlib.sha256(f"{username}\x00{address}".encode()).hexdigest()[:32]


def _address_key(address: str) -> str:
    return "signin-fail-address:" + hashlib.sha256(address.encode()).hexdigest()[:32]


def signin_address(request: HttpRequest | None) -> str:
    """Where a sign-in comes from: the client address the proxy saw behind WORKBENCH_HTTPS, else the peer's."""
    if request is None:
        return ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.WORKBENCH_HTTPS and forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR") or ""


def signin_refusal(*, username: str, address: str) -> str | None:
    """Why a sign-in from ``address`` as ``username`` is not tried now, or None."""
    account_key, address_key = _key(username, address), _address_key(address)
    counts: dict[str, int] = _counted(lambda: caches["throttle"].get_many([account_key, address_key]), {})
    if (
        counts.get(account_key, 0) >= FAILURES_PER_ACCOUNT_AND_ADDRESS
        or counts.get(address_key, 0) >= settings.SIGNIN_FAILURES_PER_ADDRESS
    ):
        minutes = WINDOW_SECONDS // 60
        return f"Too many wrong passwords from here: sign-in is paused for up to {minutes} minutes. Try again later."
    return None


def signin_failed(*, username: str, address: str) -> None:
    cache = caches["throttle"]

    def count() -> int:
        counts = []
        for key in (_key(username, address), _address_key(address)):
            cache.add(key, 0, timeout=WINDOW_SECONDS)  # the window starts at the first failure
            try:
                counts.append(cache.incr(key))
            except ValueError:  # expired between add and incr
                cache.set(key, 1, timeout=WINDOW_SECONDS)
                counts.append(1)
        return counts[-1]

    over_all_accounts = _counted(count, 0)
    if over_all_accounts == settings.SIGNIN_FAILURES_PER_ADDRESS:  # once, when the pause begins: for the operators
        logger.warning(
            "Sign-in from %s paused: %d wrong passwords over all accounts within %d minutes (password spraying?)",
            address,
            over_all_accounts,
            WINDOW_SECONDS // 60,
        )


def signin_succeeded(*, username: str, address: str) -> None:
    """Clears the account's count from this address; the address's own count stays (see the module's docstring)."""
    _counted(lambda: caches["throttle"].delete(_key(username, address)), False)


class _Throttled:
    """The ``clean`` of Django's authentication forms, counted and refused past the limit."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username, address = str(self.cleaned_data.get("username") or ""), signin_address(self.request)
        refused = signin_refusal(username=username, address=address)
        if refused:
            SIGNIN_FAILURES.labels("paused").inc()
            raise ValidationError(refused, code="throttled")
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                SIGNIN_FAILURES.labels("wrong_password").inc()
                signin_failed(username=username, address=address)
            raise
        if self.get_user() is not None:  # type: ignore[attr-defined]
            # Only a checked password clears the count: with a field missing (an empty password) Django's clean
            # checks nothing, and clearing then let a guesser reset the count after every nine guesses.
            signin_succeeded(username=username, address=address)
        return cleaned


class SignInForm(NulCheckedForm, _Throttled, AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": "Wrong username or password."}


class AdminSignInForm(_Throttled, AdminAuthenticationForm):
    pass
