"""Real CAIPI web processes when the things under them fail: Redis restarted while traffic
runs, a process killed or stopped, and machines whose clocks disagree.

Processes A and B are ``uvicorn caipi.asgi:application`` subprocesses on one PostgreSQL
database (``tests/support/caipi_servers.py``). The Redis of the restart test is this
test's own (``tests/support/redis_server.py``): killed and started again empty, as a Redis
without persistence comes back after a restart. Bob's calls draw on a quota, Carol's on
none, Erin's on a small one.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis

from caipi import settings as caipi_settings
from caipi.core import redis as core_redis
from caipi.core.models import User
from caipi.gateway.background import TICK
from caipi.gateway.inflight import STALE_SECONDS, inflight_totals
from caipi.governance.models import QuotaLimit, UsageRecord
from caipi.governance.services.apikeys import apikey_revoke
from deploy import services
from deploy.models import Model
from tests.gateway.conftest import add_model
from tests.gateway.test_two_processes import _FailingEngine
from tests.support.caipi_servers import (
    CHAT,
    FAKETIME_LIBRARY,
    CaipiProcess,
    api_key_of,
    chat,
    running_caipis,
    seconds_until,
    server_env,
    skewed_clock,
)
from tests.support.redis_server import OwnRedis, own_redis
from tests.support.simulator import running_simulator

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

POLL = 0.2  # CAIPI_SHARED_STATE_POLL_SECONDS of A and B
BOUND = POLL + 0.8  # a change made elsewhere holds on both processes within this
TICK_BOUND = 0.75  # published and read within a tick (0.25 s) each, with room
OBSERVING = 0.25  # a scrape of /metrics every 50 ms on a loaded machine
RECOVERY = 10.0  # Redis back -> limited calls answered again (connection back-off, retries)


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database (rows committed by the test), as a URL for the subprocesses."""
    from django.db import connection

    base = urlsplit(os.environ["DATABASE_URL"])
    return base._replace(path="/" + connection.settings_dict["NAME"]).geturl()


def _env(database_url: str, redis_url: str, secret_key: str) -> dict[str, str]:
    return server_env(
        database_url=database_url,
        redis_url=redis_url,
        extra={
            "SECRET_KEY": secret_key,
            "CAIPI_SHARED_STATE_POLL_SECONDS": str(POLL),
            "CAIPI_CIRCUIT_FAILURES": "3",
            "CAIPI_CIRCUIT_COOLDOWN": "30",
        },
    )


@pytest.fixture
def bob(transactional_db) -> User:
    return User.objects.create_user(username="bob-f", password="pw", site_role="api_user")


@pytest.fixture
def carol(transactional_db) -> User:
    return User.objects.create_user(username="carol-f", password="pw", site_role="api_user")


@pytest.fixture
def erin(transactional_db) -> User:
    return User.objects.create_user(username="erin-f", password="pw", site_role="api_user")


# --- Redis restarted while traffic runs --------------------------------------------------


@pytest.fixture
def restartable_redis(settings, tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis of this test's own, for A, B and this process (its writes bump the shared
    governance and routing versions there, as an admin's writes on a third process would)."""
    with own_redis(tmp_path) as server:
        settings.REDIS_URL = server.url
        settings.CACHES = caipi_settings.redis_caches(server.url)
        core_redis.reset_clients()
        yield server
    core_redis.reset_clients()


class _Traffic:
    """Calls sent to A and B in turn from a thread, for as long as it runs, each remembered
    as (whose, status, Retry-After)."""

    def __init__(self, servers: tuple[CaipiProcess, ...], keys: dict[str, str]) -> None:
        self.servers = servers
        self.keys = keys
        self.answers: list[tuple[str, int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            for whose, raw in self.keys.items():
                answer = chat(self.servers[turn % len(self.servers)], raw)
                self.answers.append((whose, answer.status_code, answer.headers.get("Retry-After")))
            turn += 1
            time.sleep(0.02)

    def __enter__(self) -> _Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def statuses(self, whose: str, since: int = 0) -> list[int]:
        return [status for who, status, _ in self.answers[since:] if who == whose]


def _in_flight(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return sum(inflight_totals(client).values())
    finally:
        client.close()


def _streams_or_breaks(server: CaipiProcess, raw_key: str) -> bool:
    """Whether a streamed answer of 40 tokens arrived whole (False: the stream broke)."""
    call = {**CHAT, "max_tokens": 40, "stream": True}
    headers = {"Authorization": f"Bearer {raw_key}"}
    try:
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=call, headers=headers, timeout=30
        ) as answer:
            return answer.status_code == 200 and "[DONE]" in answer.read().decode()
    except httpx.HTTPError:
        return False


@pytest.fixture
def failing_engine() -> Iterator[tuple[str, type[_FailingEngine]]]:
    handler = type("FailingEngine", (_FailingEngine,), {"calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_a_redis_restarted_under_traffic_fails_limited_calls_closed_and_everything_rebuilds(
    restartable_redis, database_url, settings, bob, carol, erin, failing_engine
):
    failing_url, failing = failing_engine
    env = _env(database_url, restartable_redis.url, settings.SECRET_KEY)
    with (
        running_simulator(model="sim-model", ttft=0.05, tpot=0.05, output_tokens=40) as slow,
        running_caipis(env, "A", "B") as (a, b),
    ):
        tutor: Model = add_model("tutor", slow.url)
        bob_key, _ = api_key_of(bob)
        carol_key, _ = api_key_of(carol)
        erin_key, _ = api_key_of(erin)
        QuotaLimit.objects.create(
            scope="user", user=bob, metric="requests", window="day", size=1000
        )
        erins = QuotaLimit.objects.create(
            scope="user", user=erin, metric="requests", window="day", size=3
        )
        for server in (a, b):  # both know both keys and Bob's limit
            seconds_until(lambda s=server: chat(s, bob_key).status_code == 200, limit=5)
            assert chat(server, carol_key).status_code == 200

        with _Traffic((a, b), {"bob": bob_key, "carol": carol_key}) as traffic:
            time.sleep(0.5)
            restartable_redis.stop()
            time.sleep(2.0)  # the outage, while the traffic runs
            restarted = len(traffic.answers)
            restartable_redis.start()  # empty: no persistence
            back = seconds_until(
                lambda: traffic.statuses("bob", restarted)[-2:] == [200, 200], limit=RECOVERY
            )
        print(f"limited calls answered on A and B again {back:.2f}s after Redis came back")

        # Carol's calls (no limit) were answered every time, on both processes; Bob's (a
        # quota) were refused with 503 and Retry-After while Redis was down, never let
        # through unchecked, and answered again once it was back.
        assert set(traffic.statuses("carol")) == {200}
        assert 503 in traffic.statuses("bob", restarted - 4)  # still refused at the end
        assert set(traffic.statuses("bob")) == {200, 503}
        refused = [retry for _, status, retry in traffic.answers if status == 503]
        assert all(retry and retry.isdigit() for retry in refused)

        # After it: quota counters count again, on one counter for both processes (Erin's
        # first calls of the day: her limit was known to both before the restart).
        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(lambda i: chat((a, b)[i % 2], erin_key).status_code, range(8)))
        assert sorted(codes) == [200] * 3 + [429] * 5
        today = int(time.time() // 86400 * 86400)
        counter = f"caipi:q:{erins.pk}:u{erin.pk}:{today}"
        assert redis.Redis.from_url(restartable_redis.url).get(counter) == b"3"

        # Governance version: a key revoked here is refused by both within the bound.
        second_key, second = api_key_of(erin)
        assert [chat(a, second_key).status_code, chat(b, second_key).status_code] == [429, 429]
        apikey_revoke(key=second, actor=None)  # both hold the key in their caches
        seconds_until(
            lambda: (
                [chat(a, second_key).status_code, chat(b, second_key).status_code] == [401, 401]
            ),
            limit=BOUND,
        )

        # In-flight counts: both processes publish theirs to the new Redis again.
        with ThreadPoolExecutor(max_workers=4) as pool:
            streams = [pool.submit(_streams_or_breaks, (a, b)[i % 2], bob_key) for i in range(4)]
            seconds_until(lambda: _in_flight(restartable_redis.url) == 4, limit=2)
            assert all(stream.result() for stream in streams)

        # Breaker openings: one opened by A keeps B off the failing endpoint.
        services.endpoint_add(model=tutor, url=failing_url)
        time.sleep(BOUND)  # both reload the routing table with the new endpoint
        for _ in range(40):
            assert chat(a, bob_key).status_code == 200
            if failing.calls >= 3:
                break
        time.sleep(TICK_BOUND)
        assert all(chat(b, bob_key).status_code == 200 for _ in range(12))
        assert failing.calls == 3


# --- A web process stopped (a restart, a deploy) -----------------------------------------


def test_a_process_stopped_with_sigterm_writes_the_usage_of_every_call_it_answered(
    database_url, redis_url, settings, carol
):
    # An hour between usage flushes: only the shutdown can write these records. (uvicorn
    # ends a process it stopped on SIGTERM by raising the signal again: no atexit handler.)
    env = {
        **_env(database_url, redis_url, settings.SECRET_KEY),
        "CAIPI_USAGE_FLUSH_SECONDS": "3600",
    }
    with running_simulator(model="sim-model", ttft=0.002, tpot=0) as engine:
        add_model("tutor", engine.url)
        raw, key = api_key_of(carol)
        with running_caipis(env, "A") as (a,):
            answers = [chat(a, raw) for _ in range(5)]
            assert [answer.status_code for answer in answers] == [200] * 5
            assert not UsageRecord.objects.filter(key_id=key.pk).exists()
        assert a.process.returncode is not None  # stopped: SIGTERM, a clean shutdown
    charged = [answer.json()["usage"]["total_tokens"] for answer in answers]
    records = UsageRecord.objects.filter(key_id=key.pk)
    assert sorted(r.prompt_tokens + r.completion_tokens for r in records) == sorted(charged)


# --- One of two web processes killed under load -----------------------------------------


def _others_seen_by(server: CaipiProcess) -> float:
    """The calls in flight that ``server``'s router counts for the *other* processes: what
    it sees (``caipi_gateway_inflight_seen``) less its own (``caipi_gateway_inflight``), from
    one scrape of its /metrics."""
    totals = {"caipi_gateway_inflight_seen": 0.0, "caipi_gateway_inflight": 0.0}
    for line in httpx.get(f"{server.url}/metrics", timeout=5).text.splitlines():
        name = line.split("{", 1)[0]
        if name in totals:
            totals[name] += float(line.rsplit(" ", 1)[1])
    return totals["caipi_gateway_inflight_seen"] - totals["caipi_gateway_inflight"]


def test_a_worker_killed_under_load_leaves_the_other_serving_and_its_calls_leave_the_router(
    database_url, redis_url, settings, bob
):
    settings.REDIS_URL = redis_url
    env = _env(database_url, redis_url, settings.SECRET_KEY)
    with running_simulator(model="sim-model", ttft=0.05, tpot=0.05, output_tokens=40) as slow:
        add_model("tutor", slow.url)  # before A and B start: both load it
        raw, _ = api_key_of(bob)
        with (
            running_caipis(env, "A", "B") as (a, b),
            ThreadPoolExecutor(max_workers=12) as pool,
        ):
            _killed_under_load(a, b, raw, pool, redis_url)


def _killed_under_load(
    a: CaipiProcess, b: CaipiProcess, raw: str, pool: ThreadPoolExecutor, redis_url: str
) -> None:
    """B streams 8 answers, A 4 and a steady line of calls; B is killed: A answers every call
    it gets, and B's 8 leave A's router within STALE_SECONDS and a tick."""
    on_b = [pool.submit(_streams_or_breaks, b, raw) for _ in range(8)]
    seconds_until(lambda: _others_seen_by(a) == 8, limit=5)  # A routes around B's 8
    on_a = [pool.submit(_streams_or_breaks, a, raw) for _ in range(4)]

    with _Traffic((a,), {"bob": raw}) as traffic:
        time.sleep(0.3)
        b.kill()  # SIGKILL: no shutdown, B's counts stay published until they expire
        gone = seconds_until(lambda: _others_seen_by(a) == 0, limit=STALE_SECONDS + 2)
        time.sleep(0.3)
    print(
        f"B's 8 calls left A's router {gone:.2f}s after the kill "
        f"(STALE_SECONDS {STALE_SECONDS}, tick {TICK}); A answered "
        f"{len(traffic.answers)} calls meanwhile"
    )

    assert gone <= STALE_SECONDS + TICK + OBSERVING
    assert [call.result() for call in on_b] == [False] * 8
    assert [call.result() for call in on_a] == [True] * 4
    assert len(traffic.answers) >= 3 and set(traffic.statuses("bob")) == {200}
    # The Celery workers' view too: B's counts expired, and A's calls that ended after its
    # last publish show as ended at its next tick (or the one after, on a busy machine).
    seconds_until(lambda: _in_flight(redis_url) == 0, limit=2 * TICK_BOUND)


# --- Clocks skewed between machines -------------------------------------------------------


@pytest.fixture
def skewed(transactional_db) -> dict[str, str]:
    """B's environment: its clock 90 s ahead of A's (and of Redis's)."""
    if not FAKETIME_LIBRARY.exists():
        pytest.skip("needs Debian's faketime package (apt-get install faketime)")
    return skewed_clock(90)


def _clock_of(answer: httpx.Response) -> float:
    return parsedate_to_datetime(answer.headers["Date"]).timestamp()


def _away_from_a_minute_edge(client: redis.Redis) -> float:
    """Wait until the Redis server's clock is at least 3 s into a minute and 15 s from its
    end (so the calls below fall in one minute window); return that minute's start."""
    while True:
        seconds, _ = client.time()
        if 3 <= seconds % 60 <= 45:
            return seconds - seconds % 60
        time.sleep(1)


def test_processes_whose_clocks_differ_by_90_seconds_charge_one_minute_counter(
    database_url, redis_url, settings, skewed, bob, shared_simulator
):
    settings.REDIS_URL = redis_url
    add_model("tutor", shared_simulator.url)
    raw, _ = api_key_of(bob)
    limit = QuotaLimit.objects.create(
        scope="user", user=bob, metric="requests", window="minute", size=4
    )
    env = _env(database_url, redis_url, settings.SECRET_KEY)
    shared = redis.Redis.from_url(redis_url)
    with running_caipis(env, "A", "B", only={"B": skewed}) as (a, b):
        minute = _away_from_a_minute_edge(shared)
        answers = [chat((a, b)[i % 2], raw) for i in range(8)]
        skew = _clock_of(answers[1]) - _clock_of(answers[0])
        assert 85 <= skew <= 95, f"B's clock is {skew:.0f}s off A's, not 90"

        assert [answer.status_code for answer in answers] == [200] * 4 + [429] * 4
        keys = shared.keys("caipi:q:*")
        assert keys == [f"caipi:q:{limit.pk}:u{bob.pk}:{int(minute)}".encode()]
        assert shared.get(keys[0]) == b"4"
        # B's refusal names the reset on the shared clock, not on its own.
        refusal = answers[5].json()["error"]
        resets_at = datetime.fromisoformat(refusal["resets_at"]).astimezone(UTC)
        assert resets_at.timestamp() == minute + 60
        assert 1 <= int(answers[5].headers["Retry-After"]) <= 61
    shared.close()
