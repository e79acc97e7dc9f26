"""The processes the demo runs beside the web server: the small model's build, the local
engine, a Celery worker when a broker is configured, and uvicorn itself."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

logger = logging.getLogger(__name__)

# The default native build of llama.cpp crashes on this kind of CPU at the first multi-token
# prompt; a portable build answers in under a second. pip's wheel cache ignores CMAKE_ARGS,
# so the portable wheel is cached in a folder of its own, never mixed with a native one.
MODEL_BUILD_ENV = {
    "CMAKE_ARGS": "-DGGML_NATIVE=OFF",
    "PIP_CACHE_DIR": str(Path.home() / ".cache" / "pip-ggml-native-off"),
}


# A log past this size is moved to ``<name>.1`` (replacing the one before) at the next start.
LOG_ROTATE_BYTES = 10 * 1024 * 1024


def open_log(log_path: Path) -> BinaryIO:
    """``log_path`` opened for appending, after a line marking this start.

    Logs of earlier runs are kept (the one that explains yesterday's crash must survive
    today's restart); a log past ``LOG_ROTATE_BYTES`` is first moved to ``<name>.1``.
    """
    if log_path.exists() and log_path.stat().st_size > LOG_ROTATE_BYTES:
        log_path.replace(log_path.with_name(log_path.name + ".1"))
    log = log_path.open("ab")
    started = time.strftime("%Y-%m-%d %H:%M:%S %z")
    log.write(f"===== started {started} =====\n".encode())
    log.flush()
    return log


def _spawn(
    argv: list[str], *, log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, output appended to ``log_path``, from the checkout."""
    with open_log(log_path) as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )


def start_celery_worker(*, log_dir: Path) -> subprocess.Popen[bytes]:
    """A Celery worker with an embedded beat scheduler, for a demo with a broker configured."""
    argv = [sys.executable, "-m", "celery", "-A", "caipi", "worker", "--beat",
            "--concurrency", "2", "--loglevel", "INFO", "-Q", "caipi,celery",
            "--schedule", str(log_dir / "celerybeat")]  # fmt: skip
    return _spawn(argv, log_path=log_dir / "celery.log")


def start_web_server(
    *, host: str, port: int, env: dict[str, str], log_dir: Path
) -> subprocess.Popen[bytes]:
    """uvicorn serving caipi.asgi, its access log in the demo's log folder."""
    argv = [sys.executable, "-m", "uvicorn", "caipi.asgi:application", "--host", host,
            "--port", str(port), "--lifespan", "auto", "--no-server-header"]  # fmt: skip
    return _spawn(argv, log_path=log_dir / "web.log", env=env)


def stop_all(processes: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the processes, then kill what is left after ten seconds."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + 10
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()


def watch(
    processes: dict[str, subprocess.Popen[bytes]], stop: threading.Event, *, once: bool = False
) -> str | None:
    """Block until ``stop`` is set or a process exits; return the name of one that exited.
    ``once``: look for half a second only (the caller loops and does its own checks)."""
    while not stop.wait(0.5):
        for name, process in processes.items():
            if process.poll() is not None:
                return name
        if once:
            return None
    return None


def has_compiler() -> bool:
    """Whether a C compiler is here to build llama-cpp-python."""
    return bool(shutil.which("cc") or shutil.which("gcc"))
