"""A throwaway CAIPI for the benchmark: data dir, migrations, endpoints, an API key, a server.

Everything goes through CAIPI's documented command line, as an admin would do it:
``manage.py migrate``, ``manage.py endpoints add MODEL URL --weight N`` and
``manage.py apikeys create USERNAME`` (whose last output line is the key). The gateway
runs with authentication and quota checks on, exactly as in production; only the data
dir (SQLite unless ``DATABASE_URL`` is given) and the Redis database are the harness's.

Every function takes the source ``tree`` CAIPI runs from: this checkout, or another one
(``--baseline-tree``, e.g. a git worktree of the commit before a change), so that before
and after are measured side by side in one run. A tree runs with this Python and its
installed packages, its own code first on the path.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from deploy.benchmark.processes import Managed, ProcessSet, free_port, start, wait_ready

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
SERVERS = ("uvicorn", "granian")
BENCH_USER = "bench"
# A Redis database of its own, so benchmark keys never mix with a developer's.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


def redis_reachable(url: str, timeout_s: float = 0.5) -> bool:
    """True when a TCP connection to the Redis URL's host and port succeeds."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or 6379), timeout_s
        ):
            return True
    except OSError:
        return False


def baseline_urls(database_url: str | None, redis_url: str | None) -> tuple[str | None, str | None]:
    """The database and Redis of the baseline CAIPI: the same servers, databases of its
    own (``<name>_baseline``; the next Redis database number), so that the two CAIPIs
    share no routing state, in-flight counts or quota counters."""
    if database_url:
        database_url = database_url.rstrip("/") + "_baseline"
    if redis_url:
        parts = urlsplit(redis_url)
        number = int(parts.path.strip("/") or 0) + 1
        redis_url = parts._replace(path=f"/{number}").geturl()
    return database_url, redis_url


def caipi_env(
    data_dir: Path, database_url: str | None, redis_url: str | None, tree: Path = REPO
) -> dict[str, str]:
    """Environment for CAIPI's commands and servers: production-like, quiet, isolated."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CAIPI_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "caipi.settings",
            "CAIPI_DATA_DIR": str(data_dir),
            "CAIPI_DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            # The tree's own code before the installed (editable) one.
            "PYTHONPATH": str(tree),
        }
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


def manage(args: Sequence[str], env: Mapping[str, str], log_path: Path, tree: Path = REPO) -> str:
    """Run ``manage.py ARGS`` and return its stdout; raises ``RuntimeError`` on failure."""
    command = [sys.executable, str(tree / "manage.py"), *args]
    done = subprocess.run(
        command, env=dict(env), cwd=tree, capture_output=True, text=True, timeout=300, check=False
    )
    with log_path.open("a") as log:
        log.write(f"$ manage.py {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


# Generous limits, so every call runs the full quota reserve/settle path without ever
# being refused: quota checks are on, the budget is just never the bottleneck.
QUOTA_SCRIPT = """
from django.contrib.auth import get_user_model
from caipi.governance.models import QuotaLimit
get_user_model().objects.get_or_create(username={user!r})
QuotaLimit.objects.get_or_create(scope="user", metric="tokens", window="day",
                                 defaults={{"size": 10**12}})
QuotaLimit.objects.get_or_create(scope="user", metric="requests", window="minute",
                                 defaults={{"size": 10**9}})
"""

COMMANDS_SCRIPT = """
from django.core.management import call_command
for command in {commands!r}:
    call_command(*command)
"""

KEY_SCRIPT = """
from django.contrib.auth import get_user_model
from caipi.governance.services import apikey_create
print(apikey_create(user=get_user_model().objects.get(username={user!r}), actor=None)[1])
"""


def provision(
    models: Mapping[str, Sequence[str]], env: Mapping[str, str], log_path: Path, tree: Path = REPO
) -> str:
    """Migrate, create every model and its endpoints, set quotas and mint an API key.

    ``models`` maps a model name to its endpoints' base URLs (with or without ``/v1``).
    Returns the API key (the last non-empty line ``apikeys create`` prints).
    """
    manage(["migrate", "--noinput"], env, log_path, tree)
    # The documented commands, run in one process (one Django start instead of one per
    # endpoint: on a busy two-core machine each start takes seconds).
    commands = [["models", "add", model, "--served-name", model] for model in models] + [
        ["endpoints", "add", model, url.removesuffix("/v1"), "--weight", "1"]
        for model, urls in models.items()
        for url in urls
    ]
    script = COMMANDS_SCRIPT.format(commands=commands) + QUOTA_SCRIPT.format(user=BENCH_USER)
    manage(["shell", "-c", script], env, log_path, tree)
    try:
        output = manage(["apikeys", "create", BENCH_USER], env, log_path, tree)
    except RuntimeError as exc:
        if "Unknown command" not in str(exc):
            raise
        # Until the documented command exists, mint the key with the same service it calls.
        output = manage(["shell", "-c", KEY_SCRIPT.format(user=BENCH_USER)], env, log_path, tree)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        raise RuntimeError("apikeys create printed no key")
    return lines[-1]


def server_command(server: str, port: int, workers: int = 1) -> list[str]:
    """Command line serving ``caipi.asgi:application`` on loopback.

    ``workers`` > 1 is uvicorn's own process manager, as ``manage.py serve`` starts it.
    """
    if server == "uvicorn":
        return [
            sys.executable, "-m", "uvicorn", "caipi.asgi:application",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--loop", "uvloop", "--http", "httptools", "--no-access-log",
            "--log-level", "warning", "--backlog", "4096",
        ]  # fmt: skip
    if server == "granian":
        return [
            sys.executable, "-m", "granian", "--interface", "asgi",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--runtime-threads", "1", "--loop", "uvloop", "--no-access-log",
            "--log-level", "warning", "--backlog", "4096", "--backpressure", "4096",
            "caipi.asgi:application",
        ]  # fmt: skip
    raise ValueError(f"unknown server {server!r}; choose from {SERVERS}")


def start_server(
    server: str,
    procs: ProcessSet,
    env: Mapping[str, str],
    run_dir: Path,
    cpus: Sequence[int],
    api_key: str,
    model: str,
    *,
    name: str = "",
    tree: Path = REPO,
    workers: int = 1,
) -> Managed:
    """Start CAIPI (from ``tree``) under ``server`` and wait until ``/v1/models`` answers."""
    port = free_port()
    proc = procs.add(
        start(
            name or f"caipi-{server}",
            server_command(server, port, workers),
            port=port,
            run_dir=run_dir,
            cpus=cpus,
            env=env,
            cwd=tree,
        )
    )
    wait_ready(proc, "/v1/models", 90, token=api_key)
    return proc


def start_celery(
    procs: ProcessSet,
    env: Mapping[str, str],
    run_dir: Path,
    cpus: Sequence[int],
    *,
    name: str = "celery",
    tree: Path = REPO,
) -> Managed:
    """Start a Celery worker with embedded beat: with a broker, beat polls endpoint health.

    (Without a broker the web process polls by itself and no worker is needed.)
    """
    command = [
        sys.executable, "-m", "celery", "-A", "caipi", "worker", "--beat",
        "--pool", "solo", "--concurrency", "1", "--loglevel", "warning",
        "--schedule", str(run_dir / f"{name}-beat-schedule"),
    ]  # fmt: skip
    return procs.add(start(name, command, port=0, run_dir=run_dir, cpus=cpus, env=env, cwd=tree))
