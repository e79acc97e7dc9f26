"""Start, watch and stop the benchmark's server processes, pinned to their CPUs.

Every process logs to a file in the run directory, is pinned with
``os.sched_setaffinity`` before it execs, runs in its own process group and is stopped
with SIGTERM (then SIGKILL after a grace period). CPU time is read with psutil over the
process and its children (granian and LiteLLM fork workers).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SimulatorSpec:
    """Settings of one simulator instance (times in seconds)."""

    model: str
    ttft: float
    tpot: float
    max_num_seqs: int
    output_tokens: int = 32
    die_mid_stream: int | None = None

    def args(self, port: int) -> list[str]:
        """The ``python -m deploy.simulator`` command line on ``port``."""
        die = [] if self.die_mid_stream is None else ["--die-mid-stream", str(self.die_mid_stream)]
        return [
            sys.executable,
            "-m",
            "deploy.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--model",
            self.model,
            "--ttft",
            str(self.ttft),
            "--tpot",
            str(self.tpot),
            "--max-num-seqs",
            str(self.max_num_seqs),
            "--output-tokens",
            str(self.output_tokens),
            "--output-dist",
            "fixed",
            "--log-level",
            "warning",
            *die,
        ]


@dataclass(slots=True)
class Managed:
    """A started server: its process, where it listens and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    cpus: tuple[int, ...] = field(default=())

    @property
    def base_url(self) -> str:
        """Base URL of its OpenAI-compatible API."""
        return f"http://127.0.0.1:{self.port}/v1"

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process and its live children so far."""
        return tree_cpu_seconds(self.popen.pid)


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its descendants; 0 if gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def free_port() -> int:
    """A loopback TCP port that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    name: str,
    command: Sequence[str],
    *,
    port: int,
    run_dir: Path,
    cpus: Sequence[int] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Managed:
    """Start ``command`` pinned to ``cpus`` with output in ``run_dir/<name>.log``."""
    log_path = run_dir / f"{name}.log"
    pinned = tuple(cpus)

    def _before_exec() -> None:
        os.setsid()
        if pinned:
            os.sched_setaffinity(0, set(pinned))

    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            preexec_fn=_before_exec,
        )
    logger.info("started %s (pid %s, port %s, cpus %s)", name, popen.pid, port, pinned)
    return Managed(name=name, popen=popen, port=port, log_path=log_path, cpus=pinned)


def wait_ready(proc: Managed, path: str, timeout_s: float, token: str | None = None) -> None:
    """Poll ``http://127.0.0.1:PORT{path}`` until it answers 200.

    Raises ``RuntimeError`` (with the log's tail) when the process exits or the
    timeout passes first.
    """
    deadline = time.monotonic() + timeout_s
    request = urllib.request.Request(f"http://127.0.0.1:{proc.port}{path}")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{log_tail(proc)}")
        with (
            contextlib.suppress(OSError, urllib.error.URLError),
            urllib.request.urlopen(request, timeout=2) as resp,  # noqa: S310 (loopback)
        ):
            if resp.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s}s:\n{log_tail(proc)}")


def log_tail(proc: Managed, lines: int = 30) -> str:
    """The last lines of a process's log."""
    try:
        return "\n".join(proc.log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(proc: Managed, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited in time."""
    if proc.popen.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.popen.pid, signal.SIGTERM)
    try:
        proc.popen.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=grace_s)


class ProcessSet:
    """All processes of a run; stops them in reverse order on exit."""

    def __init__(self) -> None:
        self.procs: list[Managed] = []

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            try:
                stop(proc)
            except Exception:  # stopping the rest matters more than one failure
                logger.exception("could not stop %s", proc.name)

    def add(self, proc: Managed) -> Managed:
        """Track a started process and return it."""
        self.procs.append(proc)
        return proc


def start_simulators(
    specs: Sequence[SimulatorSpec], procs: ProcessSet, run_dir: Path, cpus: Sequence[int]
) -> list[Managed]:
    """Start one simulator per spec on free ports and wait until each is healthy."""
    started = []
    for index, spec in enumerate(specs):
        port = free_port()
        name = f"sim-{spec.model}-{index}"
        started.append(
            procs.add(start(name, spec.args(port), port=port, run_dir=run_dir, cpus=cpus))
        )
    for proc in started:
        wait_ready(proc, "/health", 60)
    return started
