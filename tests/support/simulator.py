"""Run the vLLM simulator (``python -m deploy.simulator``) as a real process for tests.

    with running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as sim:
        OpenAI(base_url=f"{sim.url}/v1", api_key="x")...

Keyword options become command-line flags (``max_num_seqs=2`` -> ``--max-num-seqs 2``,
``legacy_metrics=True`` -> ``--legacy-metrics``; ``None`` and ``False`` are left out).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 20.0
STOP_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SimulatorHandle:
    """A running simulator: ``url`` is the base URL without ``/v1``."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        """Return what the simulator has logged so far (for assertion messages)."""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _flags(options: dict[str, object]) -> list[str]:
    flags: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            flags.append(flag)
        elif isinstance(value, list | tuple):
            flags.extend([flag, *map(str, value)])
        else:
            flags.extend([flag, str(value)])
    return flags


def _ready(url: str, *, need_health: bool) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return not need_health  # answering at all (503 while starting up) is enough
    except OSError:
        return False


def _wait_until_ready(handle: SimulatorHandle, *, need_health: bool) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if handle.process.poll() is not None:
            raise RuntimeError(f"simulator exited at start-up:\n{handle.output()}")
        if _ready(handle.url, need_health=need_health):
            return
        time.sleep(0.05)
    raise RuntimeError(f"simulator not ready after {START_TIMEOUT_SECONDS}s:\n{handle.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return  # already gone, e.g. after --die-after
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_simulator(
    model: str = "sim-model", *, port: int | None = None, **options: object
) -> Iterator[SimulatorHandle]:
    """Start a simulator on a free loopback port (or on ``port``) and stop it on exit.

    Waits until ``/health`` answers 200, or, when ``startup_delay`` is set, until the
    port answers at all (so a test can watch the 503 phase). Raises ``RuntimeError``
    with the simulator's log if it does not come up.
    """
    port = port or free_port()
    command = [
        sys.executable, "-m", "deploy.simulator", "--model", model,
        "--host", "127.0.0.1", "--port", str(port), *_flags(options),
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile(prefix="simulator-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log, stderr=log)
        handle = SimulatorHandle(f"http://127.0.0.1:{port}", port, process, log)
        try:
            _wait_until_ready(handle, need_health=not options.get("startup_delay"))
            yield handle
        finally:
            _stop(process)
