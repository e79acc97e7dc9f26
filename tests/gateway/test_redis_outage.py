"""Redis down degrades, it does not break: a real Redis of the test's own, stopped mid-run.

Pages keep working (the cache answers as misses); /v1 calls that draw on no limit keep
working, even in a process that started while Redis was down; calls that need a quota fail
closed with 503 and Retry-After; when Redis comes back, everything works again by itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import sync_to_async

from caipi import settings as caipi_settings
from caipi.core import redis as core_redis
from caipi.gateway import background
from caipi.gateway.catalog import reset_catalog
from caipi.governance.models import QuotaLimit
from tests.support.redis_server import OwnRedis, own_redis

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}


@pytest.fixture
def redis_server(settings, tmp_path) -> Iterator[OwnRedis]:
    """CAIPI on a Redis server of this test's own: cache, quotas, shared state."""
    with own_redis(tmp_path) as server:
        settings.REDIS_URL = server.url
        settings.CACHES = caipi_settings.redis_caches(server.url)  # as in production
        core_redis.reset_clients()
        monkey_retry = core_redis.CACHE_OUTAGE.RETRY_SECONDS
        core_redis.CACHE_OUTAGE.RETRY_SECONDS = 0.2  # the test need not wait for the back-off
        yield server
        core_redis.CACHE_OUTAGE.RETRY_SECONDS = monkey_retry
        core_redis.CACHE_OUTAGE.succeeded()
    core_redis.reset_clients()


def _limit_erin(api_user) -> None:
    QuotaLimit.objects.create(
        scope="user", user=api_user, metric="requests", window="minute", size=100
    )


def test_pages_keep_working_while_redis_is_down_and_after_it_is_back(
    redis_server, client, student, course
):
    client.force_login(student)
    assert client.get(f"/courses/{course.pk}/").status_code == 200

    redis_server.stop()
    for path in ("/", f"/courses/{course.pk}/", "/keys/", "/policy/"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
    assert "frame-ancestors 'self'" in answer["Content-Security-Policy"]

    redis_server.start()
    time.sleep(0.3)  # past the back-off: the next call tries Redis again
    assert client.get(f"/courses/{course.pk}/").status_code == 200
    assert core_redis.CACHE_OUTAGE.since is None


def test_the_cache_logs_an_outage_once_not_once_per_call(redis_server, client, caplog, db):
    redis_server.stop()
    with caplog.at_level("WARNING", logger="caipi.core.redis"):
        for _ in range(5):
            assert client.get("/").status_code == 200
    outages = [r for r in caplog.records if "Redis cache unreachable" in r.getMessage()]
    assert len(outages) == 1


def test_readiness_reports_the_cache_down_by_name(redis_server, client, settings):
    settings.CELERY_BROKER_URL = None
    redis_server.stop()
    answer = client.get("/readyz", REMOTE_ADDR="127.0.0.1")
    assert answer.status_code == 503
    assert answer.json()["checks"]["cache"]["ok"] is False


async def test_a_process_started_while_redis_is_down_serves_v1_and_fails_closed_on_quotas(
    redis_server, v1, chat_model, api_user
):
    redis_server.stop()
    reset_catalog()  # as if this process had just started, Redis already down
    await background.stop()

    free = await v1.post("/v1/chat/completions", json=CHAT)
    assert free.status_code == 200, free.text

    await sync_to_async(_limit_erin)(api_user)
    limited = await v1.post("/v1/chat/completions", json=CHAT)
    assert limited.status_code == 503
    assert limited.headers["Retry-After"].isdigit()
    assert limited.json()["error"]["code"] == "service_unavailable"

    redis_server.start()
    deadline = time.monotonic() + 10
    while True:
        back = await v1.post("/v1/chat/completions", json=CHAT)
        if back.status_code == 200 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert back.status_code == 200, back.text


async def test_redis_stopping_mid_run_keeps_unlimited_calls_working(
    redis_server, v1, chat_model, api_user, caplog
):
    first = await v1.post("/v1/chat/completions", json=CHAT)
    assert first.status_code == 200, first.text

    redis_server.stop()
    with caplog.at_level("ERROR", logger="caipi.gateway.background"):
        for _ in range(3):
            answer = await v1.post("/v1/chat/completions", json={**CHAT, "stream": True})
            assert answer.status_code == 200 and answer.text.rstrip().endswith("data: [DONE]")
        await asyncio.sleep(1.0)  # four ticks of the background's in-flight sync
    failures = [r for r in caplog.records if "in-flight sync failed" in r.getMessage()]
    assert len(failures) <= 1  # once per outage, not four times a second
