"""A Redis client on the Celery broker the tests run against (the embedded socket or a real URL), for tests
that look into a queue."""

from __future__ import annotations

import redis
from django.conf import settings


def broker_client() -> redis.Redis:
    url = settings.CELERY_BROKER_URL
    if url.startswith("redis+socket://"):
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"))
    return redis.Redis.from_url(url)
