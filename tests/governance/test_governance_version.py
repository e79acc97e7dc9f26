"""The shared governance version after Redis restarts empty: a change made after the restart
is never mistaken for one a process already knew from before it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caipi.core import redis as core_redis
from caipi.governance.snapshot import _SharedVersion
from tests.support.redis_server import OwnRedis, own_redis

pytestmark = pytest.mark.redis


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def restartable_redis(settings, tmp_path) -> Iterator[OwnRedis]:
    with own_redis(tmp_path) as server:
        settings.REDIS_URL = server.url
        core_redis.reset_clients()
        yield server
    core_redis.reset_clients()


def test_a_change_after_a_restart_moves_the_version_a_process_held_before_it(
    restartable_redis, settings
):
    settings.SHARED_STATE_POLL_SECONDS = 1
    admin, web = _SharedVersion(), _SharedVersion(clock=_Clock())
    admin.bump()  # the only change before the restart
    before = web.current()  # the web process caches entries under this version

    restartable_redis.stop()
    restartable_redis.start()  # empty, as without persistence
    core_redis.reset_clients()
    admin.bump()  # the first change after it, before the web process polls again
    web.clock.now += 1  # type: ignore[attr-defined]
    after = web.current()

    assert after != before


def test_versions_only_grow_while_redis_runs(restartable_redis):
    admin, web = _SharedVersion(), _SharedVersion(clock=_Clock())
    seen = []
    for _ in range(3):
        admin.bump()
        web.clock.now += 10  # type: ignore[attr-defined]
        seen.append(web.current()[1])
    assert seen[0] < seen[1] < seen[2] == seen[0] + 2
