"""The one module that talks to vLLM (or anything speaking its HTTP API); nothing else
imports the HTTP library it uses.

One aiohttp ``ClientSession`` per event loop keeps pooled keep-alive connections to every
endpoint. Callers get CAIPI's own types: ``UpstreamResponse`` (status, headers, the body
whole or as an async iterator of bytes) and ``UpstreamError``, whose ``transient`` is true
for connection errors, timeouts, 5xx and a stream that breaks (try another endpoint), false
otherwise. A 4xx answer is *not* an error here: it is returned so the relay can pass it
through to the client.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
import orjson

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
# What the HTTP library raises when a connection fails or times out mid-way.
_BROKEN = (aiohttp.ClientError, TimeoutError, OSError)


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


class UpstreamResponse:
    """An endpoint's answer whose status line and headers have arrived; the body has not.

    Read the body whole (``read``) or chunk by chunk (``async for chunk in response``:
    bytes as they arrive, nothing parsed). Either raises ``UpstreamError(transient=True)``
    when the connection breaks or times out. Hand the connection back with ``release()``
    when the answer was read to its end, or drop it with ``close()`` — which also stops the
    engine generating an answer nobody reads.
    """

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status: int = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The whole (remaining) body."""
        try:
            return await self._response.read()
        except _BROKEN as exc:
            raise _broken(exc) from exc

    def __aiter__(self) -> UpstreamResponse:
        return self

    async def __anext__(self) -> bytes:
        # One await per chunk, as aiohttp's own iterator: the hot path pays nothing extra.
        try:
            data = await self._response.content.readany()
        except _BROKEN as exc:
            raise _broken(exc) from exc
        if not data:
            raise StopAsyncIteration
        return data

    def release(self) -> None:
        """Give the connection back to the pool (the body was read to its end)."""
        self._response.release()

    def close(self) -> None:
        """Drop the connection (the engine stops generating)."""
        self._response.close()


def _broken(exc: BaseException) -> UpstreamError:
    return UpstreamError(f"{type(exc).__name__}: {exc}", transient=True)


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
    return await _get_status(session(), base_url + path, token, within) == 200


async def _get_status(
    client: aiohttp.ClientSession, url: str, token: str, within: float
) -> int | str:
    """The status ``GET url`` answered with, or what went wrong instead. Never raises."""
    try:
        timeout = aiohttp.ClientTimeout(total=within)
        async with client.get(url, headers=_headers(token), timeout=timeout) as response:
            await response.read()
            return response.status
    except _BROKEN as exc:
        return f"{type(exc).__name__}: {exc}"


def probe_once(url: str, *, within: float) -> str | None:
    """Synchronous probe for code without an event loop (launchers waiting for an engine
    to start): None when ``GET url`` answered 200 within ``within`` seconds, else what it
    answered ("HTTP 503") or what went wrong. Never raises; not for the hot path."""

    async def probe() -> int | str:
        async with aiohttp.ClientSession() as client:
            return await _get_status(client, url, "", within)

    outcome = asyncio.run(probe())
    if outcome == 200:
        return None
    return f"HTTP {outcome}" if isinstance(outcome, int) else outcome


def scrape_once(base_url: str, token: str = "", *, within: float) -> EngineLoad | None:
    """Synchronous ``scrape_metrics`` for code without an event loop (the reconciler
    checking that a draining engine has finished its calls). Never raises."""

    async def scrape() -> EngineLoad | None:
        async with aiohttp.ClientSession() as client:
            return await _scrape(client, base_url, token, within)

    return asyncio.run(scrape())


async def scrape_metrics(base_url: str, token: str, *, within: float) -> EngineLoad | None:
    """The engine's load from ``GET /metrics``, or None when it cannot be read."""
    return await _scrape(session(), base_url, token, within)


async def _scrape(
    client: aiohttp.ClientSession, base_url: str, token: str, within: float
) -> EngineLoad | None:
    try:
        async with client.get(
            base_url + "/metrics",
            headers=_headers(token),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            if response.status != 200:
                return None
            return parse_metrics(await response.text())
    except (*_BROKEN, UnicodeDecodeError):
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
) -> UpstreamResponse:
    """POST ``body`` (JSON bytes) to ``base_url + path`` and return the open response.

    Returns as soon as the status line and headers arrived; the caller reads the body
    and must ``release()`` or ``close()`` the response. A status below 500 is returned as
    is (4xx is the client's problem and is passed through). Raises
    ``UpstreamError(transient=True)`` on connection errors, timeouts and 5xx — nothing has
    reached the client yet then.
    """
    timeout = aiohttp.ClientTimeout(
        total=None, sock_connect=connect_timeout, connect=connect_timeout, sock_read=read_timeout
    )
    try:
        response = await session().post(
            base_url + path, data=body, headers=_headers(token, True), timeout=timeout
        )
    except _BROKEN as exc:
        raise _broken(exc) from exc
    if response.status >= 500:
        detail = await _read_quietly(response)
        response.release()
        raise UpstreamError(
            f"endpoint answered {response.status}: {detail[:200]!r}",
            transient=True,
            status=response.status,
        )
    return UpstreamResponse(response)


async def _read_quietly(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await asyncio.wait_for(response.read(), timeout=2.0)
    except _BROKEN:
        return b""


# -- sleep mode (vLLM's development endpoints: --enable-sleep-mode, VLLM_SERVER_DEV_MODE=1) --


async def sleep(base_url: str, token: str, *, level: int, within: float) -> None:
    """``POST /sleep?level=N``: level 1 offloads the weights to CPU memory and drops the KV
    cache, level 2 drops both. Returns once the engine answered 200; raises
    ``UpstreamError`` otherwise (transient for timeouts, connection errors and 5xx)."""
    await _post_control(f"{base_url}/sleep?level={int(level)}", token, within)


async def wake_up(base_url: str, token: str, *, within: float) -> None:
    """``POST /wake_up``: reload the weights and the KV cache. vLLM answers once the engine
    is awake, so this returns when it can serve. Raises ``UpstreamError``."""
    await _post_control(f"{base_url}/wake_up", token, within)


async def is_sleeping(base_url: str, token: str, *, within: float) -> bool | None:
    """``GET /is_sleeping``: True or False, or None when the engine did not say (down,
    slow, or started without the development endpoints). Never raises."""
    try:
        async with session().get(
            base_url + "/is_sleeping",
            headers=_headers(token),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            if response.status != 200:
                return None
            answer = await response.json(content_type=None)
    except (*_BROKEN, ValueError):
        return None
    value = answer.get("is_sleeping") if isinstance(answer, dict) else None
    return value if isinstance(value, bool) else None


async def _post_control(url: str, token: str, within: float) -> None:
    try:
        async with session().post(
            url, headers=_headers(token), timeout=aiohttp.ClientTimeout(total=within)
        ) as response:
            detail = await response.read()
            status = response.status
    except _BROKEN as exc:
        raise _broken(exc) from exc
    if status != 200:
        raise UpstreamError(
            f"endpoint answered {status} to {url.rsplit('/', 1)[-1]}: {detail[:200]!r}",
            transient=status >= 500,
            status=status,
        )


async def count_tokens(base_url: str, token: str, request: bytes, *, within: float) -> int:
    """The engine's own count of a prompt: ``POST /tokenize`` (vLLM) with ``request`` (a
    chat ``messages`` or a ``prompt`` body), answering ``{"count": N, ...}``.

    Raises ``UpstreamError``: ``status`` 404 or 405 when the engine has no ``/tokenize``
    (llama.cpp answers a different shape there, which counts as having none), otherwise
    transient. Never used on the hot path of an ordinary call: only when a prompt's upper
    bound does not fit the remaining budget.
    """
    try:
        async with session().post(
            base_url + "/tokenize",
            data=request,
            headers=_headers(token, True),
            timeout=aiohttp.ClientTimeout(total=within),
        ) as response:
            answer = await response.read()
            status = response.status
    except _BROKEN as exc:
        raise _broken(exc) from exc
    if status != 200:
        raise UpstreamError(f"/tokenize answered {status}", transient=status >= 500, status=status)
    try:
        count = orjson.loads(answer).get("count")
    except (orjson.JSONDecodeError, AttributeError):
        count = None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise UpstreamError("/tokenize gave no count", transient=False, status=404)
    return count
