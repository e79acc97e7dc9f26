"""Measure the simulator under many concurrent streams.

``python -m deploy.simulator.loadcheck --streams 1000 --tokens 64 --ttft 0.05 --tpot 0.02``
starts a simulator on a free port (or uses ``--url``), opens N concurrent streaming chat
requests with aiohttp from ``--client-procs`` processes, and reports achieved time to
first token and time per output token against the configured values, plus the CPU time
the simulator process used. If achieved times stay close to the configured ones while
the simulator uses well under one core, it is not the bottleneck of a benchmark.

TTFT is measured from just before the request is sent to the first content chunk (so it
includes connecting); TPOT is (last chunk - first chunk) / (tokens - 1) per stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

CONTENT_MARK = b'"delta":{"content"'


@dataclass(slots=True)
class StreamResult:
    """Timings of one streamed request, in seconds."""

    headers: float
    ttft: float
    tpot: float | None
    tokens: int


@dataclass(slots=True)
class WorkerReport:
    """What one client process measured."""

    results: list[StreamResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cpu_seconds: float = 0.0


async def _one_stream(session: aiohttp.ClientSession, url: str, tokens: int) -> StreamResult:
    payload = {
        "messages": [{"role": "user", "content": "Explain the central limit theorem."}],
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
    }
    started = time.perf_counter()
    first = last = 0.0
    count = 0
    async with session.post(url, json=payload) as response:
        # The simulator sends headers on arrival, so this is connect + send + accept time.
        headers = time.perf_counter() - started
        response.raise_for_status()
        async for data in response.content.iter_any():
            now = time.perf_counter()
            # The role chunk's delta starts with "role", so it does not match the mark.
            seen = data.count(CONTENT_MARK)
            if seen > 0:
                first = first or now
                last = now
                count += seen
    tpot = (last - first) / (count - 1) if count > 1 else None
    return StreamResult(headers=headers, ttft=first - started, tpot=tpot, tokens=count)


async def _run_streams(url: str, streams: int, tokens: int, rounds: int) -> WorkerReport:
    report = WorkerReport()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for _ in range(rounds):
                try:
                    report.results.append(await _one_stream(session, url, tokens))
                except (aiohttp.ClientError, TimeoutError) as error:
                    report.errors.append(repr(error))

        await asyncio.gather(*(client() for _ in range(streams)))
    return report


def _worker(args: tuple[str, int, int, int]) -> WorkerReport:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    started = time.process_time()
    report = asyncio.run(_run_streams(*args))
    report.cpu_seconds = time.process_time() - started
    return report


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of ``pid`` (Linux).

    The second figure tells a slow simulator apart from a starved one: on a shared
    machine a process can fall behind while using little CPU because it is not
    scheduled.
    """
    with open(f"/proc/{pid}/schedstat") as stat:
        on_cpu, waiting, _ = stat.read().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


SERVER_SERIES = {
    "server_ttft_mean_ms": "vllm:time_to_first_token_seconds",
    "server_tpot_mean_ms": "vllm:time_per_output_token_seconds",
    "server_queue_mean_ms": "vllm:request_queue_time_seconds",
}


def _scrape(base: str) -> dict[str, float]:
    """Return the ``_sum`` and ``_count`` samples of the timing histograms."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name.endswith(("_sum", "_count")):
            samples[name] = float(rest.rsplit(" ", 1)[1])
    return samples


def _server_means(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Mean of each timing histogram over the run, as the simulator itself saw it."""
    means = {}
    for key, series in SERVER_SERIES.items():
        count = after.get(f"{series}_count", 0) - before.get(f"{series}_count", 0)
        total = after.get(f"{series}_sum", 0) - before.get(f"{series}_sum", 0)
        means[key] = round(total / count * 1000, 2) if count else float("nan")
    return means


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_simulator(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    command = [
        sys.executable, "-m", "deploy.simulator", "--model", "loadcheck", "--port", str(port),
        "--ttft", str(args.ttft), "--tpot", str(args.tpot),
        "--max-num-seqs", str(max(args.streams, 1)), "--log-level", "warning",
        *args.simulator_args,
    ]  # fmt: skip
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            # Our own http:// URL, so the scheme audit does not apply.
            with urllib.request.urlopen(f"{base}/health", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("simulator did not become healthy")


def _percentiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    pick = [ordered[min(len(ordered) - 1, int(q * len(ordered)))] for q in (0.5, 0.9, 0.99)]
    mean = statistics.fmean(ordered)
    return "p50 {:.1f}  p90 {:.1f}  p99 {:.1f}  mean {:.1f} ms".format(
        *(value * 1000 for value in (*pick, mean))
    )


def _measure(args: argparse.Namespace, base: str, pid: int | None) -> dict[str, object]:
    url = f"{base}/v1/chat/completions"
    procs = max(1, args.client_procs)
    shares = [args.streams // procs + (i < args.streams % procs) for i in range(procs)]
    cpu_before = _cpu_seconds(pid) if pid else (0.0, 0.0)
    scraped = _scrape(base)
    wall_started = time.perf_counter()
    jobs = [(url, share, args.tokens, args.rounds) for share in shares if share]
    with multiprocessing.get_context("spawn").Pool(len(jobs)) as pool:
        reports = pool.map(_worker, jobs)
    wall = time.perf_counter() - wall_started
    server = _server_means(scraped, _scrape(base))
    results = [result for report in reports for result in report.results]
    return {
        "streams": args.streams,
        "rounds": args.rounds,
        "tokens": args.tokens,
        "completed": len(results),
        "errors": sum(len(report.errors) for report in reports),
        "short_streams": sum(result.tokens != args.tokens for result in results),
        "headers": _percentiles([result.headers for result in results]),
        "ttft": _percentiles([result.ttft for result in results]),
        "tpot": _percentiles([result.tpot for result in results if result.tpot is not None]),
        "wall_seconds": round(wall, 2),
        **_simulator_cpu(pid, cpu_before),
        "client_cpu_seconds": round(sum(report.cpu_seconds for report in reports), 2),
        **server,
    }


def _simulator_cpu(pid: int | None, before: tuple[float, float]) -> dict[str, float | None]:
    if not pid:
        return {"simulator_cpu_seconds": None, "simulator_starved_seconds": None}
    after = _cpu_seconds(pid)
    return {
        "simulator_cpu_seconds": round(after[0] - before[0], 2),
        "simulator_starved_seconds": round(after[1] - before[1], 2),
    }


def _report(args: argparse.Namespace, numbers: dict[str, object]) -> None:
    if args.json:
        print(json.dumps(numbers, indent=2))
        return
    cpu = numbers["simulator_cpu_seconds"]
    wall = float(str(numbers["wall_seconds"]))
    print(f"{args.streams} concurrent streams x {args.rounds} rounds, {args.tokens} tokens each")
    print(f"completed {numbers['completed']}, errors {numbers['errors']}, "
          f"short {numbers['short_streams']}")  # fmt: skip
    print(f"response headers after {numbers['headers']}")
    print(f"TTFT  configured {args.ttft * 1000:.1f} ms | achieved {numbers['ttft']}")
    print(f"TPOT  configured {args.tpot * 1000:.1f} ms | achieved {numbers['tpot']}")
    print(
        "as the simulator saw it: mean TTFT {server_ttft_mean_ms} ms, mean TPOT "
        "{server_tpot_mean_ms} ms, mean queue {server_queue_mean_ms} ms".format(**numbers)
    )
    if cpu is not None:
        share = float(str(cpu)) / wall * 100
        print(f"simulator CPU {cpu} s over {wall} s wall = {share:.0f}% of one core")
        print(f"simulator waited {numbers['simulator_starved_seconds']} s for a free CPU")
    print(f"client CPU {numbers['client_cpu_seconds']} s (all client processes)")


def main(argv: Sequence[str] | None = None) -> None:
    """Parse options, run the load, print the report."""
    parser = argparse.ArgumentParser(prog="python -m deploy.simulator.loadcheck")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="sequential requests per stream")
    parser.add_argument("--ttft", type=float, default=0.05)
    parser.add_argument("--tpot", type=float, default=0.02)
    parser.add_argument("--client-procs", type=int, default=1)
    parser.add_argument("--url", default=None, help="use a running simulator (no CPU figure)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("simulator_args", nargs="*", help="extra simulator options after --")
    args = parser.parse_args(argv)
    if args.url:
        _report(args, _measure(args, args.url.rstrip("/"), None))
        return
    process, base = _start_simulator(args)
    try:
        _report(args, _measure(args, base, process.pid))
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
