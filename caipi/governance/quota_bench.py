"""What one call's quota reserve and settle cost in this process (issue 14 item 2).

``python -m caipi.governance.quota_bench --redis-url redis://127.0.0.1:6379/11`` runs, on a
real Redis (emptied first: give it a database of its own), the quota path of a call with the
gateway benchmark's two limits (user tokens per day, user requests per minute), and prints
wall and CPU time per call:

- ``direct``: today's path, one EVALSHA to reserve and one to settle (leases off);
- ``leases``: reserve and settle from this process's slices (``quota_leases``);
- ``pipelined-settle``: the direct reserve, and the settles sent 100 at a time in one
  pipeline (what batching settles off the hot path would cost);
- ``rtt``: a bare PING round trip, the most overlapping the reserve with routing could hide.

``sequential`` runs one call after another (the time to first token of one call);
``concurrent`` runs ``--tasks`` calls at once (the CPU per call under load). Results are
the median of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any


def _setup(redis_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")
    import django

    django.setup()
    from django.conf import settings

    from caipi.governance import limits
    from caipi.governance.limits import LimitRule, LimitsSnapshot

    settings.REDIS_URL = redis_url
    snapshot = LimitsSnapshot(
        rules={
            ("user", None): (
                LimitRule(9101, "user", "tokens", "day", 10**12, "user tokens per day"),
                LimitRule(9102, "user", "requests", "minute", 10**9, "user requests per minute"),
            ),
        },
    )

    async def aget() -> LimitsSnapshot:
        return snapshot

    limits.LIMITS.aget = aget  # type: ignore[method-assign]


def _principal() -> Any:
    from caipi.governance.principal import Principal

    return Principal(1, None, "bench", "api_user", None, None)


async def _call() -> None:
    from caipi.governance.services import quotas

    principal = _principal()
    reservation = await quotas.quota_reserve(
        principal=principal, model="m", prompt_tokens=300, max_tokens=64
    )
    await quotas.quota_settle(reservation, prompt_tokens=40, completion_tokens=64)


async def _pipelined_settle(calls: int) -> None:
    """Direct reserves, then their settles 100 to a pipeline."""
    from caipi.core.redis import async_redis
    from caipi.governance.services import quotas
    from caipi.governance.services.quota_scripts import SETTLE

    principal = _principal()
    pending = []
    for _ in range(calls):
        reservation = await quotas.quota_reserve(
            principal=principal, model="m", prompt_tokens=300, max_tokens=64
        )
        pending.append(reservation)
        if len(pending) == 100:
            pipe = async_redis().pipeline(transaction=False)
            for held in pending:
                keys = [counter.key for counter in held.counters]
                deltas = quotas._deltas(held, 40, 64)
                pipe.evalsha(SETTLE.sha, len(keys), *keys, *deltas)
            await pipe.execute()
            pending.clear()


async def _measure(work: Callable[[], Awaitable[None]], calls: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    await work()
    return (time.perf_counter() - wall) / calls * 1e6, (time.process_time() - cpu) / calls * 1e6


async def _run(mode: str, shape: str, calls: int, tasks: int) -> tuple[float, float]:
    from django.conf import settings

    from caipi.core.redis import async_redis
    from caipi.governance.services import quota_leases

    settings.GOVERNANCE_QUOTA_LEASES = mode == "leases"
    quota_leases.clear()
    await async_redis().flushdb()

    async def tick_forever() -> None:  # what the gateway's background task does
        while True:
            await quota_leases.quota_leases_tick()
            await asyncio.sleep(0.25)

    ticker = asyncio.get_running_loop().create_task(tick_forever())
    for _ in range(50):  # warm: scripts loaded, pool connected, slices taken
        await _call()
    await asyncio.sleep(0.05)

    async def sequential() -> None:
        if mode == "rtt":
            for _ in range(calls):
                await async_redis().ping()
        elif mode == "pipelined-settle":
            await _pipelined_settle(calls)
        else:
            for _ in range(calls):
                await _call()

    async def concurrent() -> None:
        async def worker() -> None:
            for _ in range(calls // tasks):
                await _call()

        await asyncio.gather(*(worker() for _ in range(tasks)))

    result = await _measure(sequential if shape == "sequential" else concurrent, calls)
    ticker.cancel()
    await quota_leases.quota_leases_return()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="direct,leases,pipelined-settle,rtt")
    args = parser.parse_args()
    _setup(args.redis_url)
    print(f"load average {os.getloadavg()[0]:.2f}; µs per call, median of {args.repeats}")
    for shape in ("sequential", "concurrent"):
        for mode in args.modes.split(","):
            if shape == "concurrent" and mode in ("rtt", "pipelined-settle"):
                continue
            runs = [
                asyncio.run(_run(mode, shape, args.calls, args.tasks)) for _ in range(args.repeats)
            ]
            wall = statistics.median(run[0] for run in runs)
            cpu = statistics.median(run[1] for run in runs)
            print(f"{shape:10} {mode:17} wall {wall:8.1f}  cpu {cpu:8.1f}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
