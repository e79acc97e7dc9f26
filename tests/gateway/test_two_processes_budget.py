"""One token budget spent through two real CAIPI processes at once, with quota leases on.

Processes A and B (``uvicorn caipi.asgi:application`` subprocesses, one PostgreSQL database,
one Redis) each reserve Bob's calls from slices they lease from his daily token counter
(``caipi.governance.services.quota_leases``). Many concurrent calls through both: the Redis
counter never goes over the limit, neither does the usage charged, and a call is refused
only once the limit is really spent — less than one call's reservation left (the
tolerance: a call needs its whole bound to fit, so up to one bound minus one token can stay
unspent).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from django.db.models import Sum

from caipi.core.models import User
from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.models import ApiKey, QuotaLimit, UsageRecord
from tests.gateway.conftest import add_model
from tests.support.caipi_servers import CaipiProcess, chat, server_env, two_caipis
from tests.support.simulator import SimulatorHandle, running_simulator

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

LIMIT = 100_000  # tokens a day, about 99 of Bob's calls
SLICES = 16  # a slice is 6,250 tokens, about five calls (64 in production: 256 calls to spend)
CALL = {
    "model": "tutor",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 1000,
    "ignore_eos": True,  # the engine generates all 1,000: a call costs close to its bound
}


@pytest.fixture
def database_url(transactional_db) -> str:
    from django.db import connection

    base = urlsplit(os.environ["DATABASE_URL"])
    return base._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@pytest.fixture
def fast_engine() -> Iterator[SimulatorHandle]:
    with running_simulator(model="sim-model", ttft=0.002, tpot=0, max_num_seqs=256) as handle:
        yield handle


@pytest.fixture
def bob_key(transactional_db) -> tuple[User, str]:
    bob = User.objects.create_user(username="bob-budget", password="pw", site_role="api_user")
    raw, prefix = apikey_generate()
    ApiKey.objects.create(user=bob, prefix=prefix, key_hash=apikey_hash(raw), name="s")
    return bob, raw


def _chat(server: CaipiProcess, raw_key: str) -> httpx.Response:
    return chat(server, raw_key, body=CALL, timeout=60)


class _Watch:
    """Reads Bob's counter and the slices held of it every 5 ms while calls run: the
    highest counter seen, and whether any slice was held at all (leases really ran)."""

    def __init__(self, redis_url: str, counter: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.counter, self.leased = counter, counter.replace("caipi:q:", "caipi:ql:", 1)
        self.highest = self.most_leased = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            used, leased = self.client.mget([self.counter, self.leased])
            self.highest = max(self.highest, int(used or 0))
            self.most_leased = max(self.most_leased, int(leased or 0))
            time.sleep(0.005)

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.mark.timeout(300)  # about 200 calls through two processes: a minute on a busy machine
def test_a_token_budget_spent_through_both_processes_is_never_overspent_nor_stranded(
    database_url, redis_url, settings, fast_engine, bob_key
):
    bob, raw = bob_key
    add_model("tutor", fast_engine.url)
    limit = QuotaLimit.objects.create(
        scope="user", user=bob, metric="tokens", window="day", size=LIMIT
    )
    today = int(time.time() // 86400 * 86400)
    counter = f"caipi:q:{limit.pk}:u{bob.pk}:{today}"
    env = server_env(
        database_url=database_url,
        redis_url=redis_url,
        extra={
            "SECRET_KEY": settings.SECRET_KEY,
            "CAIPI_QUOTA_LEASES": "true",
            "CAIPI_QUOTA_LEASE_SLICES": str(SLICES),
        },
    )
    with two_caipis(env) as (a, b), _Watch(redis_url, counter) as watch:
        # 1. Many concurrent calls through both, more than the budget holds.
        with ThreadPoolExecutor(max_workers=16) as pool:
            burst = list(pool.map(lambda i: _chat((a, b)[i % 2], raw), range(120)))
        assert {answer.status_code for answer in burst} <= {200, 429}
        # 2. Then one at a time, alternating, until refused: what is left is really spent.
        refusal = None
        for turn in range(100):
            answer = _chat((a, b)[turn % 2], raw)
            if answer.status_code == 429:
                refusal = answer.json()["error"]
                break
            assert answer.status_code == 200, answer.text
    # Both processes stopped cleanly: their slices are back, their usage written.
    assert refusal is not None, "the budget was never spent"
    assert watch.most_leased > 0, "no slice was ever leased: the test did not test leases"
    assert watch.highest <= LIMIT
    charged = UsageRecord.objects.filter(user=bob).aggregate(
        total=Sum("prompt_tokens") + Sum("completion_tokens")
    )["total"]
    used = int(redis.Redis.from_url(redis_url).get(counter))
    print(f"charged {charged} of {LIMIT}; counter {used}; highest seen {watch.highest}")
    assert used == charged <= LIMIT
    # The refusal counted exactly what was charged (no slice held anywhere any more), and
    # less than the refused call's bound was left.
    assert refusal["used"] == charged
    bound = int(refusal["message"].split("needs up to ")[1].split(")")[0])
    assert LIMIT - charged < bound
