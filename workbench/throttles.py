"""Per-user request rates: every signed-in user's (session or API token) calls to the REST API
(USER_API_RATE_LIMIT), and their video uploads, from the browser's form and ``POST /api/videos/`` alike, counted
together (UPLOAD_RATE_LIMIT). Counted in the shared Redis cache (``throttle``), so every web process sees one count;
over a rate: the API's 429 with ``Retry-After``, the upload form shown again with why and when to try again.

Platforms have their own per-integration rate (``moderation.integrations.api.IntegrationRateThrottle``); an
integration's calls are no user's and pass these. Every throttle here and there (and the CSP reports') is an
``AtomicRateThrottle``: one count taken atomically in Redis (``workbench.ratelimit``). The rates are read from settings on each request (not from
``DEFAULT_THROTTLE_RATES``, which DRF copies once at import), so a deployment's and a test's settings both hold."""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.throttling import SimpleRateThrottle

from workbench.ratelimit import RateWindow, rate_peek, rate_take


class AtomicRateThrottle(SimpleRateThrottle):
    """DRF's rate throttle (its rate syntax, ``get_rate``/``get_cache_key``/``scope`` as subclasses know them), its
    count taken atomically in Redis (``workbench.ratelimit``) instead of DRF's read-then-write of a history, which
    let concurrent requests each read the same count and all pass. Every throttle of the workbench is one of these.
    Redis unreachable: the request is served, uncounted (logged), never a 500 (``workbench.ratelimit``)."""

    # The alias in ``CACHES`` whose Redis keeps the counts (``workbench.ratelimit``).
    cache_alias = "throttle"
    # Set by SimpleRateThrottle's __init__ from the rate (the integration throttle sets them per request).
    num_requests: int | None
    duration: int | None
    _wait: float | None = None

    def allow_request(self, request: Any, view: Any) -> bool:
        self._wait = None
        if self.rate is None or self.num_requests is None or self.duration is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        counted = rate_take(
            cache=self.cache_alias, windows=[RateWindow(key, self.num_requests, self.duration)], what=self.scope or ""
        )
        if not counted.allowed:
            self._wait = counted.wait
        return counted.allowed

    def wait(self) -> float | None:
        """Seconds until a request would be taken again (after a refusal), as DRF's ``Retry-After`` reads it."""
        return self._wait

    def retry_after(self) -> int:
        """Whole seconds until a request is accepted again (at least 1), as ``Retry-After`` says it."""
        return max(1, math.ceil(self.wait() or 1))


class UserRateThrottle(AtomicRateThrottle):
    """A signed-in user's API request rate (USER_API_RATE_LIMIT). Anonymous callers and integrations pass (an
    anonymous call is refused 401/403 anyway; an integration has its own rate)."""

    scope = "user"
    rate_setting = "USER_API_RATE_LIMIT"
    # The schema's 429 description of an operation this throttle guards (``workbench.api_schema``).
    describes = "over your user's API request rate (USER_API_RATE_LIMIT)"

    def get_rate(self) -> str | None:
        return str(getattr(settings, self.rate_setting))

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        # Id and join time: ids are reused (tests roll back, a database restored), a user's join time with it is not.
        return f"throttle:{self.scope}:{user.pk}:{user.date_joined.timestamp():.6f}"


class UploadRateThrottle(UserRateThrottle):
    """A user's video uploads (UPLOAD_RATE_LIMIT): the upload form and ``POST /api/videos/`` share one count."""

    scope = "upload"
    rate_setting = "UPLOAD_RATE_LIMIT"
    describes = "over your user's video upload rate (UPLOAD_RATE_LIMIT, the upload form and the API together)"


class ApiTokenIssueThrottle(UserRateThrottle):
    """A user's new API tokens (API_TOKEN_ISSUE_RATE_LIMIT): the API token page and ``POST /api/token/`` share one
    count, taken only when a token is to be made (a first one, a rotation), not for the 409 of one kept."""

    scope = "token_issue"
    rate_setting = "API_TOKEN_ISSUE_RATE_LIMIT"
    describes = "over your user's rate of new API tokens (API_TOKEN_ISSUE_RATE_LIMIT)"


def api_token_issue_wait(request: Any) -> int | None:
    """Count a new API token against ``request.user``'s rate: None when it may be made, else the seconds to wait."""
    throttle = ApiTokenIssueThrottle()
    if throttle.allow_request(request, None):
        return None
    return throttle.retry_after()


def api_token_issue_refusal_text(seconds: int) -> str:
    """What a user over their rate of new API tokens reads (the page and the API)."""
    return (
        f"Too many new API tokens: you may make {settings.API_TOKEN_ISSUE_RATE_LIMIT} (created or rotated, on "
        f"this page and through the API together). Try again {retry_after_text(seconds)}; no token was made and "
        "your current one, if any, is unchanged."
    )


def upload_rate_wait(request: HttpRequest) -> int | None:
    """Count this upload against ``request.user``'s upload rate: None when it may go on, else the seconds to wait
    (the browser's form; the API applies ``UploadRateThrottle`` itself)."""
    throttle = UploadRateThrottle()
    if throttle.allow_request(request, None):
        return None
    return throttle.retry_after()


def upload_rate_wait_peek(user: Any) -> int | None:
    """Seconds until ``user`` may upload again (their upload rate spent), None when they may now; counts nothing.
    The request-size middleware's look before a large upload's body is read: the count itself is taken where it
    always was (the form's view, the API's throttle). Redis down: None (as the count itself lets it through)."""
    if user is None or not user.is_authenticated:
        return None
    throttle = UploadRateThrottle()
    key = throttle.get_cache_key(_UserOnly(user), None)
    if key is None or throttle.rate is None:
        return None
    return rate_wait_peek(throttle, key=key, rate=throttle.rate)


def rate_wait_peek(throttle: AtomicRateThrottle, *, key: str, rate: str) -> int | None:
    """Seconds until the count at ``key`` (``throttle``'s cache) is under ``rate`` again, None when it is now;
    counts nothing. Redis down or a rate DRF cannot read: None (the count itself lets it through)."""
    try:
        allowed, duration = throttle.parse_rate(rate)
    except (ValueError, KeyError, IndexError):
        return None
    if allowed is None or duration is None:
        return None
    wait = rate_peek(cache=throttle.cache_alias, windows=[RateWindow(key, allowed, duration)])
    # In whole seconds, as ``Retry-After`` says them.
    return None if wait is None else max(1, math.ceil(wait))


class _UserOnly:
    """What ``get_cache_key`` reads of a request: its user."""

    def __init__(self, user: Any) -> None:
        self.user = user


def upload_rate_refusal_text(seconds: int) -> str:
    """What a user over their upload rate reads (the form's page and the API's early refusal)."""
    return (
        f"Too many uploads: you may send {settings.UPLOAD_RATE_LIMIT} (the upload form and the API "
        f"together). Try again {retry_after_text(seconds)}; this file was not uploaded."
    )


def retry_after_text(seconds: int) -> str:
    """'in 42 seconds', 'in 3 minutes', 'in 1 hour 5 minutes': when to try again, for a person."""
    if seconds < 60:
        return f"in {seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    if minutes < 60:
        return f"in {minutes} minute{'s' if minutes != 1 else ''}"
    hours, rest = divmod(minutes, 60)
    text = f"in {hours} hour{'s' if hours != 1 else ''}"
    return f"{text} {rest} minute{'s' if rest != 1 else ''}" if rest else text
