"""Engine killed under load: the main benchmark's ``engine-kill`` scenario, and on its own.

In ``python -m deploy.benchmark`` (scenario ``engine-kill``): a "kill" pool of three
simulators (``KILL_SPEC``), the first started with ``--die-mid-stream``; every run sends
its calls at once (half streamed, half not) and the first engine exits mid-stream.
``KillStage`` restarts it (same port) before the next run and, for a proxy target, waits
until that target routes calls to it again, so every run starts with three live engines.

On its own, comparing stream continuation on and off:

    python -m deploy.benchmark.engine_kill [--calls 400] [--repeats 1]

One CAIPI (uvicorn, one worker, SQLite and in-memory quotas in a fresh data dir per run)
in front of three simulators; ``--calls`` calls go out at once, half streamed, half not;
one simulator runs with ``--die-mid-stream`` and exits as soon as one of its streams has
sent that many tokens, cutting every stream it carries. A failed call is one the load
generator counts as failed (``load.one_request``: an HTTP error, an SSE error event, a
stream without ``[DONE]``). Runs alternate ``CAIPI_GATEWAY_CONTINUE_STREAMS`` off/on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import tempfile
import time
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from deploy.benchmark import caipi_env
from deploy.benchmark.load import PROMPT, one_request
from deploy.benchmark.processes import (
    Managed,
    ProcessSet,
    SimulatorSpec,
    free_port,
    start,
    wait_ready,
)
from deploy.benchmark.scenarios import RunRecord, Step, Target

logger = logging.getLogger(__name__)

MODEL = "bench-model"
KILL_MODEL = "bench-kill"
DIE_AFTER_TOKENS = 30
# 100-token answers at 20 ms per token: a call is in flight for about 2 s.
KILL_SPEC = SimulatorSpec(KILL_MODEL, ttft=0.05, tpot=0.02, max_num_seqs=512, output_tokens=100)


def kill_specs() -> list[SimulatorSpec]:
    """The kill pool: three engines, the first one dying mid-stream."""
    return [replace(KILL_SPEC, die_mid_stream=DIE_AFTER_TOKENS), KILL_SPEC, KILL_SPEC]


def served_calls(metrics_text: str) -> float:
    """Calls an engine has finished, from its Prometheus text (``vllm:request_success``)."""
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("vllm:request_success_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _served(sim: Managed) -> float:
    url = f"http://127.0.0.1:{sim.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        return served_calls(resp.read().decode())


@dataclass(slots=True)
class KillStage:
    """Keeps the kill pool whole between runs (see the module docstring)."""

    procs: ProcessSet
    pool: list[Managed]
    spec: SimulatorSpec
    run_dir: Path
    cpus: tuple[int, ...]
    routed_timeout_s: float = 40.0

    def before(self, step: Step, target: Target) -> None:
        """Restart the dying engine if it died, then wait until ``target`` uses it."""
        victim = self.pool[0]
        if victim.popen.poll() is not None:
            command = self.spec.args(victim.port)
            restarted = start(victim.name, command, port=victim.port, run_dir=self.run_dir,
                              cpus=self.cpus)  # fmt: skip
            self.pool[0] = self.procs.add(restarted)
            wait_ready(restarted, "/health", 60)
        if target.sut is not None:
            asyncio.run(self._until_routed(step, target))

    async def _until_routed(self, step: Step, target: Target) -> None:
        victim, url = self.pool[0], target.pools[step.pool][0]
        head = {"Content-Type": "application/json", "Authorization": f"Bearer {target.api_key}"}
        body = json.dumps({"model": step.model, "max_tokens": 1,
                           "messages": [{"role": "user", "content": PROMPT}]}).encode()  # fmt: skip
        before = _served(victim)
        deadline = time.monotonic() + self.routed_timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                await asyncio.gather(*(one_request(session, url, body, head, False)
                                       for _ in range(6)))  # fmt: skip
                if _served(victim) > before:
                    return
                await asyncio.sleep(0.5)
        logger.warning("%s still does not route to the restarted engine", target.name)

    def after(self, step: Step, target: Target, record: RunRecord) -> None:
        """Note whether the engine really died during the run."""
        record.summary.engine_died = self.pool[0].popen.poll() is not None


async def _load(url: str, key: str, calls: int, max_tokens: int) -> dict[str, int]:
    head = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(n: int) -> str:
            stream = n % 2 == 0
            body = {
                "model": MODEL,
                "messages": [{"role": "user", "content": PROMPT}],
                "max_tokens": max_tokens,
                "stream": stream,
            }
            sample = await one_request(session, url, json.dumps(body).encode(), head, stream)
            kind = "streamed" if stream else "whole"
            return f"{kind} failed ({sample.error})" if sample.error else f"{kind} ok"

        ends = await asyncio.gather(*(one(n) for n in range(calls)))
    return {end: ends.count(end) for end in sorted(set(ends))}


def run_once(continue_streams: bool, calls: int, die_after: int, run_dir: Path) -> dict[str, int]:
    spec = SimulatorSpec(MODEL, ttft=0.05, tpot=0.02, max_num_seqs=512, output_tokens=100)
    with ProcessSet() as procs:
        sims = []
        for index in range(3):
            port = free_port()
            command = spec.args(port)
            if index == 0:
                command += ["--die-mid-stream", str(die_after)]
            sims.append(procs.add(start(f"sim-{index}", command, port=port, run_dir=run_dir)))
        for sim in sims:
            wait_ready(sim, "/health", 60)
        data_dir = run_dir / "caipi-data"
        data_dir.mkdir()
        env = caipi_env.caipi_env(data_dir, None, None)
        env["CAIPI_GATEWAY_CONTINUE_STREAMS"] = "true" if continue_streams else "false"
        log = run_dir / "setup.log"
        key = caipi_env.provision({MODEL: [sim.base_url for sim in sims]}, env, log)
        server = caipi_env.start_server("uvicorn", procs, env, run_dir, (), key, MODEL)
        counts = asyncio.run(_load(server.base_url, key, calls, 100))
        counts["engine died"] = int(sims[0].popen.poll() is not None)
        return counts


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.benchmark.engine_kill")
    parser.add_argument("--calls", type=int, default=400, help="half streamed, half not")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--die-mid-stream", type=int, default=30)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for repeat in range(args.repeats):
        for continue_streams in (False, True):
            with tempfile.TemporaryDirectory(prefix="caipi-engine-kill-") as tmp:
                counts = run_once(continue_streams, args.calls, args.die_mid_stream, Path(tmp))
            print(f"repeat {repeat} continue={continue_streams}: {counts}", flush=True)


if __name__ == "__main__":
    main()
