"""Circuit-breaker openings shared by every gateway process through Redis.

Each process counts the failures of its own calls (``CircuitBreaker`` in deploy/router.py).
When one of its breakers opens, the background task (caipi/gateway/background.py)
publishes ``caipi:breaker:<endpoint id>`` = the process's token, expiring after the
breaker's cooldown. Every tick each process reads these keys for its endpoints: an
endpoint opened elsewhere is skipped here too until the key expires; then each process
goes back to its own breaker (the opener probes the endpoint half-open, and publishes
again if the probe fails). So an endpoint that one process finds failing is avoided by all
within two ticks (0.5 s), without a Redis call on the hot path.

The expiry runs on the Redis server's clock (``SET ... PX``), so machines whose clocks
disagree still agree on when an opening ends. When Redis cannot be reached, each process
falls back to its own breakers.
"""

from __future__ import annotations

from typing import Any

from caipi.gateway.catalog import Catalog

KEY = "caipi:breaker:{}"


async def breakers_sync(redis: Any, current: Catalog) -> None:
    """Publish the breakers opened here since the last sync, then learn which endpoints
    other processes have open (one pipelined round trip)."""
    opened, current.opened = current.opened, set()
    ids = sorted({e.id for e in current.endpoints()})
    if not opened and not ids:
        current.shared_open = frozenset()
        return
    token = current.inflight.token
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for endpoint_id in opened:
                breaker = current.breakers.get(endpoint_id)
                if breaker is not None:  # None: the endpoint was removed meanwhile
                    px = max(1, round(breaker.cooldown * 1000))
                    pipe.set(KEY.format(endpoint_id), token, px=px)
            if ids:
                pipe.mget([KEY.format(i) for i in ids])
            results = await pipe.execute()
    except Exception:
        current.opened |= opened  # publish them with the next sync that reaches Redis
        current.shared_open = frozenset()
        raise
    owners = results[-1] if ids else []
    current.shared_open = frozenset(
        endpoint_id
        for endpoint_id, owner in zip(ids, owners, strict=True)
        if owner is not None and _text(owner) != token
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
