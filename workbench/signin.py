"""Sign-in throttling: wrong passwords are counted per account and address and per address (in the shared
``throttle`` cache, so every web process sees one count), and past the limit a sign-in is refused before the
password is checked, on the sign-in page and the admin's alike. Without it a password could be guessed at the
speed of the server.

Per account *and* address, not per account alone: someone else's wrong guesses never lock a user out from
their own address."""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.http import HttpRequest

WINDOW_SECONDS = 15 * 60
FAILURES_PER_ACCOUNT_AND_ADDRESS = 10
FAILURES_PER_ADDRESS = 50


def _keys(username: str, address: str) -> tuple[str, str]:
    who = hashlib.sha256(f"{username}\x00{address}".encode()).hexdigest()[:32]
    where = hashlib.sha256(address.encode()).hexdigest()[:32]
    return f"signin-fail:{who}", f"signin-fail-addr:{where}"


def _address(request: HttpRequest | None) -> str:
    return (request.META.get("REMOTE_ADDR") or "") if request is not None else ""


def signin_refusal(*, username: str, address: str) -> str | None:
    """Why a sign-in from ``address`` as ``username`` is not tried now, or None."""
    pair, addr = _keys(username, address)
    counts = caches["throttle"].get_many([pair, addr])
    if counts.get(pair, 0) >= FAILURES_PER_ACCOUNT_AND_ADDRESS or counts.get(addr, 0) >= FAILURES_PER_ADDRESS:
        minutes = WINDOW_SECONDS // 60
        return f"Too many wrong passwords from here: sign-in is paused for up to {minutes} minutes. Try again later."
    return None


def signin_failed(*, username: str, address: str) -> None:
    cache = caches["throttle"]
    for key in _keys(username, address):
        cache.add(key, 0, timeout=WINDOW_SECONDS)  # the window starts at the first failure
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=WINDOW_SECONDS)


def signin_succeeded(*, username: str, address: str) -> None:
    caches["throttle"].delete(_keys(username, address)[0])


class _Throttled:
    """The ``clean`` of Django's authentication forms, counted and refused past the limit."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username, address = str(self.cleaned_data.get("username") or ""), _address(self.request)
        refused = signin_refusal(username=username, address=address)
        if refused:
            raise ValidationError(refused, code="throttled")
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                signin_failed(username=username, address=address)
            raise
        signin_succeeded(username=username, address=address)
        return cleaned


class SignInForm(_Throttled, AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": "Wrong username or password."}


class AdminSignInForm(_Throttled, AdminAuthenticationForm):
    pass
