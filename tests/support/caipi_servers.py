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
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from caipi.governance.apikeys import apikey_generate, apikey_hash
from caipi.governance.models import ApiKey
from tests.support.simulator import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 3}


def api_key_of(user: Any, *, name: str = "s") -> tuple[str, ApiKey]:
    """A new API key of ``user``: the raw key a client sends, and its row."""
    raw, prefix = apikey_generate()
    key = ApiKey.objects.create(user=user, prefix=prefix, key_hash=apikey_hash(raw), name=name)
    return raw, key


def chat(
    server: CaipiProcess,
    raw_key: str,
    *,
    body: Mapping[str, Any] = CHAT,
    timeout: float = 30,
    **extra: object,
) -> httpx.Response:
    """A ``/v1/chat/completions`` call to ``server`` with ``raw_key`` (``extra`` fields added)."""
    return httpx.post(
        f"{server.url}/v1/chat/completions",
        json={**body, **extra},
        headers={"Authorization": f"Bearer {raw_key}"},
        timeout=timeout,
    )


def seconds_until(condition: Callable[[], bool], *, limit: float) -> float:
    """How long until ``condition`` holds (checked at once, then every 20 ms); fails past
    ``limit`` seconds, with how long it waited."""
    start = time.monotonic()
    while not condition():
        waited = time.monotonic() - start
        assert waited < limit, f"not within {limit}s (waited {waited:.2f}s)"
        time.sleep(0.02)
    return time.monotonic() - start


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


def _start(name: str, env: Mapping[str, str], log: IO[bytes]) -> CaipiProcess:
    port = free_port()
    command = [
        sys.executable, "-m", "uvicorn", "caipi.asgi:application", "--host", "127.0.0.1",
        "--port", str(port), "--lifespan", "on", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=dict(env), stdout=log, stderr=log)
    return CaipiProcess(name, f"http://127.0.0.1:{port}", process, log)


def _wait_ready(server: CaipiProcess) -> None:
    deadline = time.monotonic() + 30
    while not _ready(server.url):
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"CAIPI {server.name} did not start:\n{server.output()}")
        time.sleep(0.1)


def _stop(server: CaipiProcess) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it does not end within 10 s."""
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def running_caipis(
    env: Mapping[str, str], *names: str, only: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[list[CaipiProcess]]:
    """Start one web process per name, side by side (they boot in parallel), and stop them
    all on exit. ``only`` adds variables to one process's environment (by its name)."""
    with ExitStack() as stack:
        servers = []
        for name in names:
            log = stack.enter_context(tempfile.NamedTemporaryFile(prefix=f"caipi-{name}-"))
            server = _start(name, {**env, **(only or {}).get(name, {})}, log)
            stack.callback(_stop, server)
            servers.append(server)
        for server in servers:
            _wait_ready(server)
        yield servers


@contextmanager
def two_caipis(env: Mapping[str, str]) -> Iterator[tuple[CaipiProcess, CaipiProcess]]:
    """Processes A and B on one database and one Redis."""
    with running_caipis(env, "A", "B") as (a, b):
        yield a, b


# Debian's libfaketime (package faketime), under the machine's multiarch folder.
FAKETIME_LIBRARY = next(
    iter(sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))),
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
)


def skewed_clock(seconds: int) -> dict[str, str]:
    """The environment that runs a process ``seconds`` ahead (behind, if negative) of this
    machine's clock: Debian's libfaketime, as ``faketime -f "+90s"`` starts a command (set
    directly, so that stopping the process stops the process, not a wrapper around it).
    Only the wall clock moves; monotonic timers run as usual."""
    if not FAKETIME_LIBRARY.exists():
        raise RuntimeError("needs Debian's faketime package (apt-get install faketime)")
    return {
        "LD_PRELOAD": str(FAKETIME_LIBRARY),
        "FAKETIME": f"{seconds:+d}s",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }
