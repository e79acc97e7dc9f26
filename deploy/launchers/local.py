"""The local process launcher: run an engine as a subprocess of this machine.

    with launch(LlamaCppEngine(), log_dir=Path("var/log")) as running:
        client = OpenAI(base_url=running.openai_base_url, api_key="unused")

Each engine runs in its own session (process group), so stopping it also stops any workers it
spawned (vLLM starts several), and a Ctrl-C meant for the parent does not reach it. Its stdout
and stderr go to one log file, whose last lines are quoted when it fails to start. POSIX only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from deploy import vllm_client
from deploy.engines import Engine
from deploy.launchers.base import (
    Handle,
    InstancePlan,
    InstanceStatus,
    Launcher,
    LaunchError,
    Placed,
    RunState,
    check_ports,
    engine_for,
    port_range,
)
from deploy.specs import Spec

logger = logging.getLogger(__name__)

# The checkout holding the `deploy` package: engines run from here, so `python -m deploy.…`
# imports this code even where the package is not installed.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 30


class EngineStartError(RuntimeError):
    """The engine exited, or did not answer its health path in time; the message quotes its log."""


@dataclass
class LocalEngineProcess:
    """An engine running as a local subprocess (whether healthy yet or not)."""

    engine: Engine
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The `base_url` an OpenAI client needs."""
        return f"{self.base_url}/v1"

    @property
    def health_url(self) -> str:
        return f"{self.base_url}{self.engine.health_path}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last `lines` lines of the engine's log ("" if there is none yet)."""
        try:
            with self.log_path.open(encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except FileNotFoundError:
            return ""

    def stop(self, *, grace: float = 10.0) -> int:
        """Stop the engine: SIGTERM to its process group, SIGKILL after `grace` seconds.

        Returns the exit code (negative: killed by that signal). Safe to call twice.
        """
        if self.process.poll() is None:
            _signal_group(self.process, signal.SIGTERM)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s on port %d ignored SIGTERM, killing it", self.engine.kind, self.port
                )
                _signal_group(self.process, signal.SIGKILL)
                self.process.wait()
            logger.info("stopped %s on port %d", self.engine.kind, self.port)
        return self.process.returncode

    def __enter__(self) -> LocalEngineProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    # The engine leads its own session (start_new_session=True), so its pid is its group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (another process may take it before we do)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def start(
    engine: Engine,
    *,
    log_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    cwd: Path = PROJECT_ROOT,
    env: dict[str, str] | None = None,
    log_name: str | None = None,
) -> LocalEngineProcess:
    """Spawn `engine` on `host:port` (a free port if None) and return at once, not yet healthy.

    Output goes to `log_dir/<log_name or kind-port>.log` (created, overwritten); `env` is
    set on top of this process's environment. Raises FileNotFoundError when the engine's
    program or model file is missing.
    """
    port = port if port is not None else free_port(host)
    argv = engine.command(port=port, host=host)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{log_name or f'{engine.kind}-{port}'}.log"
    # Unbuffered, so that the log is complete when we quote it after a crash.
    env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        **engine.environment(port=port, host=host),
        **(env or {}),
    }
    with log_path.open("wb") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    logger.info(
        "started %s (pid %d) on %s:%d, log %s", engine.kind, process.pid, host, port, log_path
    )
    return LocalEngineProcess(engine, host, port, process, log_path)


class NotReady(RuntimeError):
    """A process exited, or did not answer 200 in time; the message says which."""


def wait_for_ok(
    url: str, process: subprocess.Popen[bytes], *, timeout: float, interval: float = 0.2
) -> float:
    """Poll ``url`` until it answers 200; return the seconds that took.

    Raises NotReady when ``process`` exits first or ``timeout`` seconds pass (naming the
    last probe's outcome). Does not stop the process: that is the caller's decision.
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        code = process.poll()
        if code is not None:
            raise NotReady(f"exited with code {code} before it was healthy")
        last = vllm_client.probe_once(url, within=min(5.0, timeout))
        if last is None:
            return time.monotonic() - started
        if time.monotonic() >= deadline:
            raise NotReady(f"not healthy after {timeout:g} s (last probe: {last})")
        time.sleep(interval)


def wait_until_healthy(
    running: LocalEngineProcess, *, timeout: float = 120.0, interval: float = 0.2
) -> float:
    """Poll the engine's health URL until it answers 200; return the seconds that took.

    Raises EngineStartError, quoting the end of the engine's log, when the process exits first
    or `timeout` seconds pass. Does not stop the engine: that is the caller's decision.
    """
    try:
        return wait_for_ok(running.health_url, running.process, timeout=timeout, interval=interval)
    except NotReady as exc:
        raise _start_error(running, str(exc)) from None


def _start_error(running: LocalEngineProcess, what: str) -> EngineStartError:
    tail = running.log_tail() or "(the log is empty)\n"
    return EngineStartError(
        f"{running.engine.kind} on port {running.port} {what}; "
        f"last lines of {running.log_path}:\n{tail}"
    )


def launch(
    engine: Engine,
    *,
    log_dir: Path,
    port: int | None = None,
    host: str = "127.0.0.1",
    timeout: float = 120.0,
) -> LocalEngineProcess:
    """Start `engine` and return once its health URL answers 200.

    On any failure the engine is stopped before EngineStartError (or the spawn error) is raised,
    so a failed launch leaves no process behind. Use the result as a context manager to stop it.
    """
    running = start(engine, log_dir=log_dir, port=port, host=host)
    try:
        seconds = wait_until_healthy(running, timeout=timeout)
    except BaseException:
        running.stop()
        raise
    logger.info("%s on port %d healthy after %.1f s", engine.kind, running.port, seconds)
    return running


# --- the reconciler's launcher: instances found again by pid from any worker process ------


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) of ``pid`` from /proc, or None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0], fields[19]


def _running(pid: int, ticks: str | None) -> bool:
    """True while ``pid`` is the very process we started (not a zombie, not a reused pid)."""
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our own child that exited, so it does not linger as a zombie.
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    stat = _proc_stat(pid)
    return stat is not None and stat[0] != "Z" and (ticks is None or stat[1] == ticks)


def _visible_gpus() -> int | None:
    """How many NVIDIA GPUs this machine has, or None when that cannot be told here."""
    try:
        listed = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))


def _is_path(value: str) -> bool:
    # A Hugging Face id such as "Qwen/Qwen2.5-7B-Instruct" is not a path to check.
    return value.startswith(("/", "./", "~"))


class LocalLauncher(Launcher):
    """Engines as processes of this machine, each in its own session, with
    ``CUDA_VISIBLE_DEVICES`` set to the GPUs planned for it and a port no live instance
    holds. Supervision (restart after a crash, with back-off) is the reconciler's: it reads
    ``status`` every tick and replaces instances that exited.

    Target: ``gpus`` (ids of this machine's GPUs CAIPI may use, default none), ``ports``
    ([low, high], default 8100-8999), ``host`` (default 127.0.0.1).
    """

    kind = "local"

    def check(self, spec: Spec) -> list[tuple[str, str]]:
        problems = check_ports(spec)
        gpus = spec.target.get("gpus", [])
        if not isinstance(gpus, list) or not all(isinstance(g, int) for g in gpus):
            return [*problems, ("deployment.target.gpus", "must be a list of GPU ids, e.g. [0, 1]")]
        if spec.gpus_per_instance > len(gpus):
            problems.append(
                (
                    "deployment.gpus_per_instance",
                    f"asks for {spec.gpus_per_instance} GPUs per instance, but the target "
                    f"has {len(gpus)} (target.gpus: {gpus})",
                )
            )
        visible = _visible_gpus() if gpus else None
        if visible is not None and any(g >= visible for g in gpus):
            problems.append(
                ("deployment.target.gpus", f"this machine has {visible} GPUs (ids 0-{visible - 1})")
            )
        path = str(spec.engine_args.get("model_path") or "")
        if path and _is_path(path) and not Path(path).expanduser().exists():
            problems.append(
                ("deployment.engine_args.model_path", f"{path} does not exist on this machine")
            )
        return problems

    def plan(self, spec: Spec, *, instance_id: int, placed: Placed) -> InstancePlan:
        free = [g for g in spec.target.get("gpus", []) if g not in placed.gpus]
        if len(free) < spec.gpus_per_instance:
            raise LaunchError(
                f"no free GPUs: an instance needs {spec.gpus_per_instance}, "
                f"free are {free} of {spec.target.get('gpus', [])}"
            )
        host = str(spec.target.get("host", "127.0.0.1"))
        low, high = port_range(spec)
        for port in range(low, high + 1):
            if port not in placed.ports and _port_free(host, port):
                return InstancePlan(instance_id, tuple(free[: spec.gpus_per_instance]), port)
        raise LaunchError(f"port range {low}-{high} is exhausted: every port is taken")

    def start(self, spec: Spec, plan: InstancePlan) -> Handle:
        from django.conf import settings

        host = str(spec.target.get("host", "127.0.0.1"))
        env = {"CUDA_VISIBLE_DEVICES": ",".join(map(str, plan.gpus))} if plan.gpus else {}
        running = start(
            engine_for(spec),
            log_dir=Path(settings.DATA_DIR) / "logs" / "instances",
            port=plan.port,
            host=host,
            env=env,
            log_name=f"{spec.name.replace('/', '_')}-{plan.instance_id}",
        )
        stat = _proc_stat(running.process.pid)
        return {
            "pid": running.process.pid,
            "ticks": stat[1] if stat else None,
            "host": host,
            "port": running.port,
            "gpus": list(plan.gpus),
            "log": str(running.log_path),
            "url": running.base_url,
        }

    def status(self, handle: Handle) -> InstanceStatus:
        if _running(int(handle["pid"]), handle.get("ticks")):
            return InstanceStatus(RunState.RUNNING, url=handle["url"])
        return InstanceStatus(RunState.EXITED, url=handle["url"], detail="the process exited")

    def stop(self, handle: Handle, *, grace: float = 10.0) -> None:
        pid, ticks = int(handle["pid"]), handle.get("ticks")
        if not _running(pid, ticks):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if not _running(pid, ticks):
                return
            time.sleep(0.05)
        logger.warning("instance pid %d ignored SIGTERM, killing it", pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        for _ in range(100):
            if not _running(pid, ticks):
                return
            time.sleep(0.02)

    def logs(self, handle: Handle, *, lines: int = LOG_TAIL_LINES) -> str:
        try:
            with open(handle["log"], encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except (KeyError, FileNotFoundError):
            return ""


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


LAUNCHER = LocalLauncher()
