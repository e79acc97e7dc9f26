"""Which real services the test run can use."""

from __future__ import annotations

import functools
import os

from django.conf import settings

DEFAULT_TEST_REDIS = "redis://127.0.0.1:6379/15"


def postgres_in_use() -> bool:
    """True when the suite runs on PostgreSQL (DATABASE_URL points at one)."""
    return settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


@functools.cache
def redis_test_url() -> str | None:
    """A reachable Redis URL for tests (database 15 unless CAIPI_TEST_REDIS_URL says), or None."""
    import redis

    url = os.environ.get("CAIPI_TEST_REDIS_URL", DEFAULT_TEST_REDIS)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
        client.ping()
        client.close()
    except redis.RedisError:
        return None
    return url
