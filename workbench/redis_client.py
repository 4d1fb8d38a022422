"""A redis-py client on the Redis server of one of Django's ``CACHES`` aliases, for what the cache API cannot say
(an atomic Lua script, a sorted set, ``GETDEL``): ``workbench.ratelimit`` and ``workbench.show_once``.

Django's ``RedisCache`` keeps its redis-py client in a private attribute (``_cache``), of no documented API
and free to change in any release. The client here is built from the alias's own ``LOCATION`` with
redis-py's public ``Redis.from_url``, once per process and location (redis-py's pool opens its connections again
in a forked child), so it talks to the same server and database the cache does. Keys are the cache's own
(``cache.make_and_validate_key``: its ``KEY_PREFIX`` and version), so the two see the same entries.

A Redis that does not answer (hung, swapping, behind a partition that drops packets) is no refused connection,
which fails at once: each call waited redis-py's default of 5 s, so every API call took 5 s more and a sign-in 10,
with the rate counts "skipped" only after it. The client waits the alias's ``socket_timeout`` /
``socket_connect_timeout`` (``OPTIONS``, the cache's own; ``ANSWER_SECONDS`` when not set), and a server that timed
out is not asked again by this process for ``UNANSWERED_PAUSE_SECONDS`` (``redis_unanswered``): ``redis_for``
raises ``RedisPaused`` at once meanwhile, which callers read as the server being unreachable."""

from __future__ import annotations

import socket
import time
from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# How long a call waits for a connection and for an answer when the alias's OPTIONS do not say: a healthy Redis
# answers these calls in well under a millisecond.
ANSWER_SECONDS = 1.0
# How long this process leaves a server that timed out alone before asking it again.
UNANSWERED_PAUSE_SECONDS = 10.0
_TIMEOUTS = ("socket_timeout", "socket_connect_timeout")
_unanswered_until: dict[str, float] = {}


class RedisPaused(RedisConnectionError):
    """The server timed out within the last ``UNANSWERED_PAUSE_SECONDS``: not asked again yet (``redis_for``)."""


def redis_for(*, alias: str) -> redis.Redis:
    """The redis-py client on the server of cache ``alias`` (a ``RedisCache`` in ``CACHES``); as Django's cache
    writes, to the first server when ``LOCATION`` names several. ``RedisPaused`` while that server is paused after a
    timeout (``redis_unanswered``)."""
    url = _url(alias)
    if redis_paused(alias=alias):
        raise RedisPaused(f"{_shown(url)} timed out less than {UNANSWERED_PAUSE_SECONDS:g} s ago; not asked again yet")
    options = settings.CACHES[alias].get("OPTIONS") or {}
    timeouts = tuple(float(options.get(name, ANSWER_SECONDS)) for name in _TIMEOUTS)
    return _redis_at(url, timeouts)


def redis_paused(*, alias: str) -> bool:
    """Whether the server of cache ``alias`` timed out less than ``UNANSWERED_PAUSE_SECONDS`` ago in this process:
    for what reads it through Django's cache API (``moderation.review.counts``), which would wait for it again."""
    return time.monotonic() < _unanswered_until.get(_url(alias), 0.0)


def redis_unanswered(*, alias: str, exc: BaseException) -> None:
    """Tell of an error a call on ``redis_for(alias=alias)``'s client raised: a timeout pauses that server for this
    process (``UNANSWERED_PAUSE_SECONDS``); anything else (a refused connection fails at once) changes nothing."""
    if isinstance(exc, RedisTimeoutError | socket.timeout) and not isinstance(exc, RedisPaused):
        _unanswered_until[_url(alias)] = time.monotonic() + UNANSWERED_PAUSE_SECONDS


def redis_key_for(*, alias: str, key: str) -> str:
    """``key`` as cache ``alias`` stores it in Redis (its prefix and version)."""
    return str(caches[alias].make_and_validate_key(key))


def _url(alias: str) -> str:
    location: Any = settings.CACHES[alias]["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else list(location)
    return str(servers[0]).strip()


def _shown(url: str) -> str:
    return url.split("@")[-1]  # no password


@cache
def _redis_at(url: str, timeouts: tuple[float, float]) -> redis.Redis:
    return redis.Redis.from_url(url, **dict(zip(_TIMEOUTS, timeouts, strict=True)))
