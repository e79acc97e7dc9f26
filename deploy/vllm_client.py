"""The one module that talks to vLLM (or anything speaking its HTTP API).

One aiohttp ``ClientSession`` per event loop keeps pooled keep-alive connections to every
endpoint. Errors are classified for the caller: ``UpstreamError.transient`` is true for
connection errors, timeouts and 5xx (try another endpoint), false otherwise. A 4xx answer
is *not* an error here: it is returned so the relay can pass it through to the client.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass

import aiohttp

logger = logging.getLogger(__name__)

_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_RUNNING = ("vllm:num_requests_running",)
_WAITING = ("vllm:num_requests_waiting",)
# vLLM >= 0.9 calls it kv_cache_usage_perc; older versions gpu_cache_usage_perc.
_KV = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
_QUEUE_SUM = "vllm:request_queue_time_seconds_sum"
_QUEUE_COUNT = "vllm:request_queue_time_seconds_count"


class UpstreamError(Exception):
    """A call to an endpoint failed; ``transient`` says another endpoint may succeed."""

    def __init__(self, message: str, *, transient: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """The scheduler state an engine reports on /metrics (summed over its engine cores).

    ``queue_time_sum``/``queue_time_count`` are cumulative counters; the health poller
    turns two scrapes into a mean queue time.
    """

    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    queue_time_sum: float = 0.0
    queue_time_count: float = 0.0


def session() -> aiohttp.ClientSession:
    """This event loop's pooled session (created on first use, kept for the loop's life)."""
    loop = asyncio.get_running_loop()
    existing = _sessions.get(loop)
    if existing is not None and not existing.closed:
        return existing
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60, ttl_dns_cache=300)
    created = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    _sessions[loop] = created
    return created


async def close_session() -> None:
    """Close this loop's session (at shutdown, or at the end of a test)."""
    existing = _sessions.pop(asyncio.get_running_loop(), None)
    if existing is not None:
        await existing.close()


def _headers(token: str, content_type: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if content_type:
        headers["Content-Type"] = "application/json"
    return headers


async def probe_health(base_url: str, token: str, *, within: float, path: str = "/health") -> bool:
    """True when ``GET <path>`` (vLLM: /health) answers 200 within ``within`` seconds.
    Never raises."""
    try:
        async with session().get(
            base_url + path,
            headers=_headers(token),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            await response.read()
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def scrape_metrics(base_url: str, token: str, *, within: float) -> EngineLoad | None:
    """The engine's load from ``GET /metrics``, or None when it cannot be read."""
    try:
        async with session().get(
            base_url + "/metrics",
            headers=_headers(token),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            if response.status != 200:
                return None
            return parse_metrics(await response.text())
    except (aiohttp.ClientError, TimeoutError, OSError, UnicodeDecodeError):
        return None


def parse_metrics(text: str) -> EngineLoad:
    """Read the scheduler gauges from Prometheus text; absent series count as 0.

    A lean line parser (not prometheus_client's): it only needs five series and runs on
    every poll of every endpoint. Series with several label sets (one per engine core)
    are summed; KV-cache usage takes the maximum (the fullest core preempts first).
    """
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("vllm:"):
            continue
        name_end = min(i for i in (line.find("{"), line.find(" ")) if i != -1)
        name = line[:name_end]
        try:
            value = float(line.rsplit(" ", 1)[-1] if "}" not in line else line.rsplit("}", 1)[1])
        except ValueError:
            continue
        if name in _KV:
            values["kv"] = max(values.get("kv", 0.0), value)
        else:
            values[name] = values.get(name, 0.0) + value
    return EngineLoad(
        running=sum(values.get(n, 0.0) for n in _RUNNING),
        waiting=sum(values.get(n, 0.0) for n in _WAITING),
        kv_usage=values.get("kv", 0.0),
        queue_time_sum=values.get(_QUEUE_SUM, 0.0),
        queue_time_count=values.get(_QUEUE_COUNT, 0.0),
    )


async def open_call(
    base_url: str,
    path: str,
    body: bytes,
    token: str,
    *,
    connect_timeout: float,
    read_timeout: float,
) -> aiohttp.ClientResponse:
    """POST ``body`` (JSON bytes) to ``base_url + path`` and return the open response.

    Returns as soon as the status line and headers arrived; the caller reads the body
    and must ``release()`` the response. A status below 500 is returned as is (4xx is the
    client's problem and is passed through). Raises ``UpstreamError(transient=True)`` on
    connection errors, timeouts and 5xx — nothing has reached the client yet then.
    """
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, connect=connect_timeout, sock_read=read_timeout
    )
    try:
        response = await session().post(
            base_url + path, data=body, headers=_headers(token, True), timeout=timeout
        )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise UpstreamError(f"{type(exc).__name__}: {exc}", transient=True) from exc
    if response.status >= 500:
        detail = await _read_quietly(response)
        response.release()
        raise UpstreamError(
            f"endpoint answered {response.status}: {detail[:200]!r}",
            transient=True,
            status=response.status,
        )
    return response


async def _read_quietly(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await asyncio.wait_for(response.read(), timeout=2.0)
    except (aiohttp.ClientError, TimeoutError, OSError):
        return b""
