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
import ipaddress
import logging
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from workbench.forms import NulCheckedForm
from workbench.metrics import SIGNIN_FAILURES
from workbench.ratelimit import RateCount, RateWindow, rate_clear, rate_give_back, rate_take

logger = logging.getLogger(__name__)

WINDOW_SECONDS = 15 * 60
FAILURES_PER_ACCOUNT_AND_ADDRESS = 10


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


def signin_client(address: str) -> str:
    """Whose count a request from ``address`` is: an IPv4 address, or an IPv6 address's /64 (a host, or a home
    network, is given a whole /64 and may send from any address of it: counted per address, each new address was a
    fresh count of wrong passwords, so one /64 could guess one account's password without limit)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:10.0.0.1 is 10.0.0.1
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _windows(username: str, address: str) -> tuple[RateWindow, RateWindow]:
    """The account's count from this address (an IPv6 address's /64: ``signin_client``) and the address's over all
    accounts, in that order."""
    client = signin_client(address)
    return (
        RateWindow(_key(username, client), FAILURES_PER_ACCOUNT_AND_ADDRESS, WINDOW_SECONDS),
        # At least 1 (the settings refuse less at start): a limit under 1 refused every sign-in, right passwords too.
        RateWindow(_address_key(client), max(1, int(settings.SIGNIN_FAILURES_PER_ADDRESS)), WINDOW_SECONDS),
    )


def signin_try_take(*, username: str, address: str) -> RateCount:
    """Take a try at signing in as ``username`` from ``address`` before its password is checked, counted as a wrong
    password in both windows at once (``workbench.ratelimit``): refused (``allowed`` False) when either is spent.
    Taken first and given back when the password was right (``signin_try_done``): a count read first and written
    after the password was checked let concurrent guesses all read the same count and all be tried. Redis down:
    allowed, uncounted (the sign-in goes on without the throttle, logged)."""
    return rate_take(cache="throttle", windows=_windows(username, address), what="sign-in")


def signin_try_done(*, username: str, address: str, taken: RateCount, wrong_password: bool) -> None:
    """The try ``taken`` is over: a wrong password stays counted (and the operators hear once when it pauses the
    address); anything else is given back. A right password also clears the account's count from this address;
    the address's own count stays (see the module's docstring)."""
    windows = _windows(username, address)
    if wrong_password:
        if taken.counted and taken.counts[1] == windows[1].limit:  # once, when the pause begins: for the operators
            logger.warning(
                "Sign-in from %s paused: %d wrong passwords over all accounts within %d minutes (password spraying?)",
                signin_client(address),
                taken.counts[1],
                WINDOW_SECONDS // 60,
            )
        return
    rate_give_back(cache="throttle", windows=windows, counted=taken)


def signin_succeeded(*, username: str, address: str) -> None:
    """Clears the account's count from this address (a checked right password)."""
    rate_clear(cache="throttle", window=_windows(username, address)[0])


class _Throttled:
    """The ``clean`` of Django's authentication forms, counted and refused past the limit."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username, address = str(self.cleaned_data.get("username") or ""), signin_address(self.request)
        taken = signin_try_take(username=username, address=address)
        if not taken.allowed:
            SIGNIN_FAILURES.labels("paused").inc()
            minutes = WINDOW_SECONDS // 60
            raise ValidationError(
                f"Too many wrong passwords from here: sign-in is paused for up to {minutes} minutes. Try again later.",
                code="throttled",
            )
        wrong_password = False
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if getattr(exc, "code", None) == "invalid_login":
                SIGNIN_FAILURES.labels("wrong_password").inc()
                wrong_password = True
            raise
        finally:
            signin_try_done(username=username, address=address, taken=taken, wrong_password=wrong_password)
        if self.get_user() is not None:  # type: ignore[attr-defined]
            # Only a checked password clears the count: with a field missing (an empty password) Django's clean
            # checks nothing, and clearing then let a guesser reset the count after every nine guesses.
            signin_succeeded(username=username, address=address)
        return cleaned


class SignInForm(NulCheckedForm, _Throttled, AuthenticationForm):
    error_messages = {**AuthenticationForm.error_messages, "invalid_login": "Wrong username or password."}


class AdminSignInForm(_Throttled, AdminAuthenticationForm):
    pass
