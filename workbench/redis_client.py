"""A redis-py client on the Redis server of one of Django's ``CACHES`` aliases, for what the cache API cannot say
(an atomic Lua script, a sorted set, ``GETDEL``): ``workbench.ratelimit`` and ``workbench.show_once``.

Django's ``RedisCache`` keeps its redis-py client in a private attribute (``_cache``), of no documented API
and free to change in any release. The client here is built from the alias's own ``LOCATION`` with
redis-py's public ``Redis.from_url``, once per process and location (redis-py's pool opens its connections again
in a forked child), so it talks to the same server and database the cache does. Keys are the cache's own
(``cache.make_and_validate_key``: its ``KEY_PREFIX`` and version), so the two see the same entries."""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
from django.conf import settings
from django.core.cache import caches


def redis_for(*, alias: str) -> redis.Redis:
    """The redis-py client on the server of cache ``alias`` (a ``RedisCache`` in ``CACHES``); as Django's cache
    writes, to the first server when ``LOCATION`` names several."""
    location: Any = settings.CACHES[alias]["LOCATION"]
    servers = location.split(",") if isinstance(location, str) else list(location)
    return _redis_at(servers[0].strip())


def redis_key_for(*, alias: str, key: str) -> str:
    """``key`` as cache ``alias`` stores it in Redis (its prefix and version)."""
    return str(caches[alias].make_and_validate_key(key))


@cache
def _redis_at(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)
