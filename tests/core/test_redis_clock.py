"""``redis_now``: the Redis server's time, whatever this machine's clock says, without a
round trip per call (the offset is measured, then refreshed now and then)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio as aredis

from caipi.core import redis_clock
from caipi.core.redis_clock import redis_clock_ready, redis_clock_refresh, redis_now

REAL_TIME = time.time


@pytest.fixture(autouse=True)
def _fresh_offset(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(redis_clock, "OFFSET", redis_clock._Offset())
    yield


def _clock_off_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This machine's wall clock, ``seconds`` off the real time."""
    monkeypatch.setattr(time, "time", lambda: REAL_TIME() + seconds)


def _server_time(url: str) -> float:
    client = redis.Redis.from_url(url)
    seconds, micros = client.time()
    client.close()
    return seconds + micros / 1e6


@pytest.mark.redis
def test_a_machine_whose_clock_is_90_seconds_fast_still_reads_the_servers_time(
    redis_url, settings, monkeypatch
):
    settings.REDIS_URL = redis_url
    _clock_off_by(monkeypatch, +90)

    now = redis_now()

    assert abs(now - _server_time(redis_url)) < 0.5
    assert redis_clock.OFFSET.seconds == pytest.approx(-90, abs=0.5)


@pytest.mark.redis
def test_the_offset_is_measured_once_then_only_every_refresh_interval(
    redis_url, settings, monkeypatch
):
    settings.REDIS_URL = redis_url
    redis_now()
    measured_at = redis_clock.OFFSET.checked_at
    _clock_off_by(monkeypatch, +90)  # the machine's clock jumps: not seen until a refresh

    assert redis_now() == pytest.approx(REAL_TIME() + 90, abs=0.5)
    assert redis_clock.OFFSET.checked_at == measured_at

    monkeypatch.setattr(redis_clock.OFFSET, "checked_at", measured_at - redis_clock.REFRESH_SECONDS)
    assert redis_now() == pytest.approx(_server_time(redis_url), abs=0.5)


@pytest.mark.redis
async def test_inside_an_event_loop_the_first_call_awaits_one_measurement(
    redis_url, settings, monkeypatch
):
    settings.REDIS_URL = redis_url
    client = aredis.Redis.from_url(redis_url)
    _clock_off_by(monkeypatch, -45)

    assert redis_now() == pytest.approx(REAL_TIME() - 45, abs=0.5)  # never waits in a loop
    await redis_clock_ready(client)
    assert redis_now() == pytest.approx(_server_time(redis_url), abs=0.5)

    _clock_off_by(monkeypatch, +45)
    await redis_clock_ready(client)  # measured already: no round trip
    await redis_clock_refresh(client)  # not due yet
    assert redis_now() == pytest.approx(REAL_TIME() + 90, abs=0.5)
    await client.aclose()


def test_without_redis_it_is_the_machines_own_clock(settings, monkeypatch):
    settings.REDIS_URL = ""
    _clock_off_by(monkeypatch, +90)

    assert redis_now() == pytest.approx(REAL_TIME() + 90, abs=0.1)
    assert redis_clock.OFFSET.measured is False


@pytest.mark.redis
def test_a_redis_that_cannot_be_reached_keeps_the_last_offset(redis_url, settings, monkeypatch):
    settings.REDIS_URL = redis_url
    _clock_off_by(monkeypatch, +90)
    redis_now()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    monkeypatch.setattr(redis_clock.OFFSET, "checked_at", -redis_clock.REFRESH_SECONDS)

    assert redis_now() == pytest.approx(_server_time(redis_url), abs=0.5)
