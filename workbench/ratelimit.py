"""One atomic request count in the shared Redis, for every rate the workbench keeps: the API's per-user and
per-integration rates, uploads, CSP reports (``workbench.throttles``) and wrong passwords at sign-in
(``workbench.signin``).

A rate is "at most N in any window of P seconds" (a sliding window, as DRF's rates read: ``10/min``). Each counted
request is a member of a Redis sorted set scored by when it came; one Lua script drops the members older than the
window, compares the rest with N and, only when every window has room, adds the request to each, all in one step
on the server. DRF's own throttle read the history, then wrote it back from the web process: eight uploads sent at
once against a limit of two each read "none yet", and four got through. The time is Redis's (``TIME``), one clock
for every web process.

A count can be taken in several windows at once (a wrong password counts per account and per address): the request
is taken in all of them or in none. A taken request can be given back (``rate_give_back``): sign-in takes a try
before the password is checked, so concurrent guesses cannot all pass a count read before any was recorded, and
gives it back when the password was right.

Redis unreachable: **the request is allowed, uncounted**, and a warning is logged (``RateCount.counted`` is False).
A rate limit is a guard against abuse, not an authorisation: while the shared cache is down the workbench keeps
serving everyone rather than refusing everyone, or answering 500."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from workbench.redis_client import redis_for, redis_key_for, redis_unanswered

logger = logging.getLogger(__name__)

# KEYS: one sorted set per window. ARGV: the member to add, "1" to take (else only look), then each window's limit
# and length in milliseconds. Returns {wait in ms (0: room in every window), count of each window (after the take)}.
_TAKE = """
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member, take = ARGV[1], ARGV[2] == '1'
local wait, counts = 0, {}
for i, key in ipairs(KEYS) do
  local limit, window = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local count = redis.call('ZCARD', key)
  counts[i] = count
  if count >= limit then
    -- One more fits once all but limit - 1 of them have left the window: the (count - limit + 1)th oldest.
    local leaving = redis.call('ZRANGE', key, count - limit, count - limit, 'WITHSCORES')
    local free_at = leaving[2] and (tonumber(leaving[2]) + window) or (now + window)
    if free_at - now > wait then wait = free_at - now end
  end
end
if wait == 0 and take then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, tonumber(ARGV[2 + 2 * i]))
    counts[i] = counts[i] + 1
  end
end
return {wait, unpack(counts)}
"""


@dataclass(frozen=True)
class RateWindow:
    """At most ``limit`` requests in any ``seconds`` at ``key`` (a key of the Django cache, before its prefix)."""

    key: str
    limit: int
    seconds: float


@dataclass(frozen=True)
class RateCount:
    """One request counted: whether it may go on; if not, the seconds until it would (``wait``). ``counts``: each
    window's count after it; ``member``: what was added (for ``rate_give_back``), empty when nothing was;
    ``counted`` is False when Redis could not be reached (allowed, uncounted: the module's docstring)."""

    allowed: bool
    wait: float
    counts: tuple[int, ...]
    member: str = ""
    counted: bool = True


def rate_take(*, cache: str, windows: Sequence[RateWindow], what: str) -> RateCount:
    """Count one request in every window of ``windows`` (``cache``: the alias of a Redis cache in ``CACHES``), atomically: taken in all
    of them when each has room, else in none and refused with the wait. ``what`` names the rate in the log."""
    member = secrets.token_hex(8)
    try:
        wait_ms, *counts = _run(cache, windows, member=member, take=True)
    except (RedisError, OSError) as exc:
        redis_unanswered(alias=cache, exc=exc)
        logger.warning("Rate limit (%s) skipped: the shared cache is unreachable (%s)", what, exc)
        return RateCount(allowed=True, wait=0.0, counts=tuple(0 for _ in windows), counted=False)
    if wait_ms > 0:
        return RateCount(allowed=False, wait=wait_ms / 1000, counts=tuple(counts))
    return RateCount(allowed=True, wait=0.0, counts=tuple(counts), member=member)


def rate_peek(*, cache: str, windows: Sequence[RateWindow]) -> float | None:
    """Seconds until one more request would be taken in every window, None when it would now; counts nothing.
    Redis unreachable: None (the count itself lets the request through)."""
    try:
        wait_ms, *_counts = _run(cache, windows, member="", take=False)
    except (RedisError, OSError) as exc:
        redis_unanswered(alias=cache, exc=exc)
        logger.warning("Request rate not looked at: the shared cache is unreachable (%s)", exc)
        return None
    return None if wait_ms <= 0 else wait_ms / 1000


def rate_give_back(*, cache: str, windows: Sequence[RateWindow], counted: RateCount) -> None:
    """Take back a request ``rate_take`` counted (nothing when it counted none): it no longer counts in any window."""
    if not counted.member:
        return
    try:
        pipe = redis_for(alias=cache).pipeline(transaction=True)
        for window in windows:
            pipe.zrem(_redis_key(cache, window), counted.member)
        pipe.execute()
    except (RedisError, OSError) as exc:
        redis_unanswered(alias=cache, exc=exc)
        logger.warning("A counted request not given back: the shared cache is unreachable (%s)", exc)


def rate_clear(*, cache: str, window: RateWindow) -> None:
    """Forget every request counted in ``window`` (a right password clears its account's count)."""
    try:
        redis_for(alias=cache).delete(_redis_key(cache, window))
    except (RedisError, OSError) as exc:
        redis_unanswered(alias=cache, exc=exc)
        logger.warning("A request count not cleared: the shared cache is unreachable (%s)", exc)


def _redis_key(cache: str, window: RateWindow) -> str:
    # "rate:" keeps the sorted sets apart from the lists DRF's throttle kept under the same names (a key of the
    # wrong type would be an error until it expired).
    return redis_key_for(alias=cache, key=f"rate:{window.key}")


def _run(cache: str, windows: Sequence[RateWindow], *, member: str, take: bool) -> list[int]:
    # The script runs on a client of the cache's own server (``workbench.redis_client``), under its key prefix.
    client = redis_for(alias=cache)
    args: list[Any] = [member, "1" if take else "0"]
    for window in windows:
        args += [window.limit, max(1, round(window.seconds * 1000))]
    keys = [_redis_key(cache, window) for window in windows]
    return [int(n) for n in client.register_script(_TAKE)(keys=keys, args=args)]
