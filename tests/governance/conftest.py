"""Governance fixtures: clean in-process caches and counters, and a way onto real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caipi.core.redis import reset_clients
from caipi.governance.apikeys import apikey_cache_clear
from caipi.governance.limits import LIMITS
from caipi.governance.principal import principal_caches_clear
from caipi.governance.services import quota_leases, quota_memory, usage


def _clear() -> None:
    apikey_cache_clear()
    principal_caches_clear()
    LIMITS.clear()
    quota_memory.clear()
    quota_leases.clear()
    usage._buffer.clear()


@pytest.fixture(autouse=True)
def _clean_governance(settings) -> Iterator[None]:
    settings.GOVERNANCE_USAGE_FLUSH_SECONDS = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.REDIS_URL = None
    _clear()
    yield
    _clear()
    reset_clients()


@pytest.fixture
def on_redis(redis_url: str, settings) -> str:
    """Governance on the real test Redis (emptied before and after)."""
    settings.REDIS_URL = redis_url
    return redis_url


@pytest.fixture
def redis_down(settings) -> str:
    """A Redis URL on which nothing listens."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    return settings.REDIS_URL
