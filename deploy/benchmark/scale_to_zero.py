"""Scale-to-zero and wake-from-sleep, measured: ``python -m deploy.benchmark.scale_to_zero``.

1. *Burst at zero.* CAIPI runs (uvicorn, one worker) with a model whose only endpoint is
   registered *starting* at a port where nothing listens yet — as the reconciler registers
   an instance it just launched. At t0 the simulator process is launched with
   ``--startup-delay S`` and a burst of N streaming calls is sent. Each call's time to
   first token is measured from t0; the bar is p99 <= S + 1 s with no failed call.
2. *Wake from sleep.* A model whose endpoint sleeps (``endpoint_sleep``, the simulator's
   ``--wake-time W``) gets one call; its time to first token has the bar W + 0.2 s.

Results are printed as JSON (and written to ``--out`` when given).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from deploy.benchmark.caipi_env import DEFAULT_REDIS_URL, caipi_env, manage, provision, start_server
from deploy.benchmark.processes import ProcessSet, free_port, start, wait_ready
from deploy.benchmark.sse import StreamTimer

SET_STATE = (
    "from deploy.models import Endpoint, Model\n"
    "from deploy import services\n"
    "e = Endpoint.objects.get(model__name={model!r})\n"
    "{action}\n"
)


def simulator(name: str, port: int, run_dir: Path, *options: str) -> Any:
    command = [
        sys.executable, "-m", "deploy.simulator", "--model", name, "--port", str(port),
        "--ttft", "0.02", "--tpot", "0.005", "--output-tokens", "16", *options,
    ]  # fmt: skip
    return start(f"sim-{name}", command, port=port, run_dir=run_dir)


async def one_call(session: aiohttp.ClientSession, url: str, key: str, model: str, t0: float):
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "stream": True}
    timer = StreamTimer()
    try:
        async with session.post(
            url, json=body, headers={"Authorization": f"Bearer {key}"}
        ) as response:
            if response.status != 200:
                return None, f"HTTP {response.status}"
            async for data in response.content.iter_any():
                timer.feed(data, time.perf_counter())
    except aiohttp.ClientError as exc:
        return None, type(exc).__name__
    if timer.error or not timer.done or not timer.content_times:
        return None, "stream error"
    return timer.content_times[0] - t0, None


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def watch_engine(engine: str, t0: float, marks: dict[str, float]) -> None:
    """Record when the engine first listens (/metrics answers) and first is healthy."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        while "healthy_s" not in marks:
            for path, mark in (("/metrics", "listening_s"), ("/health", "healthy_s")):
                if mark in marks:
                    continue
                try:
                    async with session.get(engine + path) as response:
                        if response.status == 200:
                            marks[mark] = round(time.perf_counter() - t0, 3)
                except (aiohttp.ClientError, TimeoutError):
                    pass
            await asyncio.sleep(0.01)


async def burst(
    url: str, key: str, model: str, calls: int, t0: float, engine: str
) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    marks: dict[str, float] = {}
    watcher = asyncio.ensure_future(watch_engine(engine, t0, marks))
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        results = await asyncio.gather(
            *(one_call(session, url, key, model, t0) for _ in range(calls))
        )
    watcher.cancel()
    ttfts = [r for r, _ in results if r is not None]
    failures = [f for _, f in results if f is not None]
    healthy = marks.get("healthy_s")
    return {
        **marks,
        "ttft_p99_after_healthy_s": round(quantile(ttfts, 0.99) - healthy, 3) if healthy else None,
        "calls": calls,
        "failed": len(failures),
        "failures": sorted(set(failures)),
        "ttft_p50_s": round(quantile(ttfts, 0.5), 3),
        "ttft_p99_s": round(quantile(ttfts, 0.99), 3),
        "ttft_max_s": round(max(ttfts), 3) if ttfts else None,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m deploy.benchmark.scale_to_zero")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--startup-delay", type=float, default=5.0)
    parser.add_argument("--wake-time", type=float, default=1.0)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    run_dir = Path(tempfile.mkdtemp(prefix="caipi-s2z-"))
    env = caipi_env(run_dir / "data", None, args.redis_url)
    log = run_dir / "manage.log"
    cold_port, sleepy_port = free_port(), free_port()
    results: dict[str, Any] = {"startup_delay_s": args.startup_delay, "wake_time_s": args.wake_time}
    with ProcessSet() as procs:
        sleepy = procs.add(
            simulator(
                "sleepy",
                sleepy_port,
                run_dir,
                "--enable-sleep-mode",
                "--wake-time",
                str(args.wake_time),
            )
        )
        wait_ready(sleepy, "/health", 30)
        key = provision(
            {
                "cold": [f"http://127.0.0.1:{cold_port}"],
                "sleepy": [f"http://127.0.0.1:{sleepy_port}"],
            },
            env,
            log,
        )
        manage(
            [
                "shell",
                "-c",
                SET_STATE.format(
                    model="cold", action="services.endpoint_set_state(endpoint=e, state='starting')"
                ),
            ],
            env,
            log,
        )
        manage(
            [
                "shell",
                "-c",
                SET_STATE.format(
                    model="sleepy", action="services.endpoint_sleep(endpoint=e, level=1)"
                ),
            ],
            env,
            log,
        )
        server = start_server("uvicorn", procs, env, run_dir, (), key, "cold")
        url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
        t0 = time.perf_counter()
        procs.add(simulator("cold", cold_port, run_dir, "--startup-delay", str(args.startup_delay)))
        cold = f"http://127.0.0.1:{cold_port}"
        results["burst"] = asyncio.run(burst(url, key, "cold", args.calls, t0, cold))
        results["burst"]["bar_s"] = args.startup_delay + 1.0
        t0 = time.perf_counter()
        sleepy_url = f"http://127.0.0.1:{sleepy_port}"
        results["wake"] = asyncio.run(burst(url, key, "sleepy", 1, t0, sleepy_url))
        results["wake"]["bar_s"] = args.wake_time + 0.2
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
