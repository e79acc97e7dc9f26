"""The load generator: closed-loop aiohttp workers, split over pinned processes.

Each worker sends one request at a time: at its start time one unrecorded warm-up (which
opens its keep-alive connection), then its measured requests. Streams are timed from raw
reads (``sse.StreamTimer``), never by parsing chunk JSON, so the generator stays cheap.
Runs with many workers are split across processes of a persistent pool (pinned to the
generator's CPUs) that start together at an agreed wall-clock instant.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from multiprocessing import get_context

import aiohttp

from deploy.benchmark.sse import StreamTimer
from deploy.benchmark.stats import Sample

PROMPT = "Explain, in a few sentences, why the sky is blue."


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """One run against one target.

    ``urls`` are base URLs ending in ``/v1``, used round-robin per request. A run ends
    when every worker sent ``requests_per_worker`` requests or, if ``duration_s`` is
    set, when that much time has passed (then requests are unbounded in count, still
    capped by ``max_requests_per_worker``). Workers start spread evenly over ``ramp_s``
    (steady state instead of one synchronized burst) and send no new request after
    ``soft_limit_s`` (a slow target then yields fewer samples instead of a stalled run);
    ``deadline_s`` is the hard bound of the whole run. ``mixed`` makes every other worker
    send non-streamed requests (its failures' reasons start with "whole", a streaming
    worker's with "streamed").
    """

    urls: tuple[str, ...]
    model: str
    api_key: str | None
    stream: bool
    concurrency: int
    max_tokens: int
    requests_per_worker: int = 1
    duration_s: float | None = None
    max_requests_per_worker: int = 100_000
    ramp_s: float = 0.0
    soft_limit_s: float = 600.0
    request_timeout_s: float = 120.0
    deadline_s: float = 600.0
    mixed: bool = False


@dataclass(slots=True)
class RunResult:
    """Samples of one run and its measured wall time (first send to last answer)."""

    samples: list[Sample]
    duration_s: float


def request_body(spec: LoadSpec, max_tokens: int | None = None) -> bytes:
    """Chat completion request body, ``max_tokens`` overriding the spec's."""
    body = {
        "model": spec.model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": max_tokens or spec.max_tokens,
        "stream": spec.stream,
    }
    return json.dumps(body).encode()


def headers(spec: LoadSpec) -> dict[str, str]:
    """Request headers, with the bearer key when the target needs one."""
    result = {"Content-Type": "application/json"}
    if spec.api_key:
        result["Authorization"] = f"Bearer {spec.api_key}"
    return result


async def one_request(
    session: aiohttp.ClientSession, url: str, body: bytes, head: dict[str, str], stream: bool
) -> Sample:
    """Send one chat completion and time it; failures become samples with ``error``."""
    start = time.perf_counter()
    try:
        async with session.post(f"{url}/chat/completions", data=body, headers=head) as resp:
            if resp.status != 200:
                await resp.read()
                return _failed(start, f"http {resp.status}")
            if not stream:
                payload = await resp.read()
                now = time.perf_counter() - start
                error = "" if b'"choices"' in payload else "no choices"
                return Sample(ttft=now, e2e=now, chunks=1, error=error)
            return await _read_stream(resp, start)
    except TimeoutError:
        return _failed(start, "timeout")
    except aiohttp.ClientError as exc:
        return _failed(start, type(exc).__name__)


async def _read_stream(resp: aiohttp.ClientResponse, start: float) -> Sample:
    timer = StreamTimer()
    async for data in resp.content.iter_any():
        timer.feed(data, time.perf_counter())
    end = time.perf_counter() - start
    if timer.error:
        return _failed(start, "error event")
    if not timer.content_times or not timer.done:
        return _failed(start, "incomplete stream")
    first = timer.content_times[0] - start
    return Sample(ttft=first, e2e=end, chunks=len(timer.content_times), gaps=timer.gaps())


def _failed(start: float, reason: str) -> Sample:
    elapsed = time.perf_counter() - start
    return Sample(ttft=math.nan, e2e=elapsed, error=reason)


def worker_spec(spec: LoadSpec, index: int) -> LoadSpec:
    """The spec worker ``index`` follows: in a mixed run odd workers do not stream."""
    return replace(spec, stream=index % 2 == 0) if spec.mixed else spec


def _labelled(sample: Sample, spec: LoadSpec) -> Sample:
    if spec.mixed and sample.error:
        sample.error = f"{'streamed' if spec.stream else 'whole'} {sample.error}"
    return sample


async def _worker(
    spec: LoadSpec, session: aiohttp.ClientSession, rr: itertools.count, start_at: float
) -> list[Sample]:
    head = headers(spec)
    body = request_body(spec)
    warm = request_body(replace(spec, stream=False), max_tokens=1)
    # Warm up just before this worker's start, so its keep-alive connection is never idle
    # long enough for a server's keep-alive timeout (uvicorn: 5 s) to close it under us.
    await asyncio.sleep(max(0.0, start_at - time.time()))
    await one_request(session, spec.urls[next(rr) % len(spec.urls)], warm, head, False)
    # A slow target may still be answering warm-ups at start_at: every worker measures at
    # least one request, and its time limits count from when it really began.
    began = time.time()
    stop_at = began + min(spec.soft_limit_s, spec.duration_s or math.inf)
    limit = spec.max_requests_per_worker if spec.duration_s else spec.requests_per_worker
    samples: list[Sample] = []
    for _ in range(limit):
        if samples and time.time() >= stop_at:
            break
        url = spec.urls[next(rr) % len(spec.urls)]
        sample = await one_request(session, url, body, head, spec.stream)
        samples.append(_labelled(sample, spec))
    return samples


async def run_workers(spec: LoadSpec, workers: int, start_at: float) -> tuple[list[Sample], float]:
    """Run ``workers`` closed-loop workers in this event loop.

    Returns the samples and the wall time from ``start_at`` to the last answer.
    """
    timeout = aiohttp.ClientTimeout(total=spec.request_timeout_s, sock_connect=30)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=120)
    rr = itertools.count(int(start_at * 1000) % 997)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False
    ) as session:
        offsets = [spec.ramp_s * (index + 0.5) / workers for index in range(workers)]
        tasks = [
            _worker(worker_spec(spec, index), session, rr, start_at + offset)
            for index, offset in enumerate(offsets)
        ]
        results = await asyncio.wait_for(asyncio.gather(*tasks), spec.deadline_s)
    return [s for batch in results for s in batch], time.time() - start_at


def _run_in_process(spec: LoadSpec, workers: int, start_at: float) -> tuple[list[Sample], float]:
    try:
        import uvloop

        return uvloop.run(run_workers(spec, workers, start_at))
    except ImportError:
        return asyncio.run(run_workers(spec, workers, start_at))


def _pin(cpus: Sequence[int]) -> None:
    if cpus:
        os.sched_setaffinity(0, set(cpus))


def split(total: int, parts: int) -> list[int]:
    """Split ``total`` workers into at most ``parts`` near-equal positive shares."""
    parts = max(1, min(parts, total))
    base, extra = divmod(total, parts)
    return [base + (1 if index < extra else 0) for index in range(parts)]


class LoadGenerator:
    """A pool of generator processes pinned to ``cpus``; use as a context manager."""

    def __init__(self, processes: int, cpus: Sequence[int]) -> None:
        self.processes = processes
        self._pool = ProcessPoolExecutor(
            max_workers=processes,
            mp_context=get_context("spawn"),
            initializer=_pin,
            initargs=(tuple(cpus),),
        )

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def run(self, spec: LoadSpec) -> RunResult:
        """Run one load spec and wait for it (bounded by ``spec.deadline_s``).

        Workers start after a lead time that lets every process warm up its
        connections (one request each), then the measured part starts together.
        """
        shares = split(spec.concurrency, self.processes if spec.concurrency >= 50 else 1)
        lead = 1.0 + spec.concurrency / 250
        start_at = time.time() + lead
        futures = [self._pool.submit(_run_in_process, spec, n, start_at) for n in shares]
        outcomes = [f.result(timeout=spec.deadline_s + lead + 30) for f in futures]
        samples = [s for batch, _ in outcomes for s in batch]
        return RunResult(samples=samples, duration_s=max(d for _, d in outcomes))
