"""Readiness probes for the services CAIPI depends on: database, cache, broker.

Each probe returns a ``Probe`` and never raises; ``/readyz`` reports them by name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection


@dataclass(frozen=True)
class Probe:
    """The outcome of one readiness probe."""

    name: str
    ok: bool
    detail: str
    ms: float

    def as_dict(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "ms": round(self.ms, 2)}


def _timed(name: str, probe: Callable[[], str]) -> Probe:
    started = time.perf_counter()
    try:
        detail = probe()
        ok = True
    except Exception as exc:  # a probe reports any failure instead of raising
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return Probe(name=name, ok=ok, detail=detail, ms=(time.perf_counter() - started) * 1000)


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("value written to the cache could not be read back")
    cache.delete(key)
    return "redis" if settings.REDIS_URL else "local memory"


def _broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "none configured: tasks run in-process"
    from celery import current_app  # CAIPI's app: caipi/__init__.py binds it

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else "connected"


def readiness_probes() -> list[Probe]:
    """Probe the database, the cache and the broker, in that order."""
    return [_timed("database", _database), _timed("cache", _cache), _timed("broker", _broker)]
