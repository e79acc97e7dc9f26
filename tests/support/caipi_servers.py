"""Real CAIPI web processes for tests: ``uvicorn caipi.asgi:application`` subprocesses.

Each process is what ``manage.py serve`` runs in production, on a free loopback port, with
the test's own PostgreSQL database (the committed rows of a ``transactional_db`` test) and
the test's Redis, so several of them share state exactly as several workers or machines do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.support.simulator import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CaipiProcess:
    """One web process: its URL, its OS process, and its log (for a failing test)."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the process dies at once, without any shutdown work (a crashed worker)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def server_env(*, database_url: str, redis_url: str, extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a web process: this test run's settings, shared database and Redis."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "caipi.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "CAIPI_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **extra,
        }
    )
    return env


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def running_caipi(name: str, env: Mapping[str, str]) -> Iterator[CaipiProcess]:
    """Start one web process and stop it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "caipi.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--lifespan", "on", "--log-level", "warning",
    ]  # fmt: skip
    with tempfile.NamedTemporaryFile(prefix=f"caipi-{name}-", suffix=".log") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(env), stdout=log, stderr=log)
        server = CaipiProcess(name, f"http://127.0.0.1:{port}", process, log)
        try:
            deadline = time.monotonic() + 30
            while not _ready(server.url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"CAIPI {name} did not start:\n{server.output()}")
                time.sleep(0.1)
            yield server
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@contextmanager
def two_caipis(env: Mapping[str, str]) -> Iterator[tuple[CaipiProcess, CaipiProcess]]:
    """Processes A and B, started side by side on one database and one Redis."""
    with ExitStack() as stack:
        yield (
            stack.enter_context(running_caipi("A", env)),
            stack.enter_context(running_caipi("B", env)),
        )
