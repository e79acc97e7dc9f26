"""The Slurm launcher: each engine instance is one batch job.

The job script is ``deploy/slurm/vllm.sbatch`` rendered from the spec (GPUs as
``--gres=gpu:N``, the time limit, partition, account, extra ``#SBATCH`` lines); the
engine runs in the foreground so ``scancel`` and the time limit reach it. State comes from
``squeue -t all`` (finished jobs stay listed for ``MinJobAge``), the node's address from
``scontrol show node``; a job Slurm no longer knows is *gone*. With a time limit, ``status``
says when the job is due for renewal (``renew_before_seconds`` before the limit), and the
reconciler starts its successor then and drains the old job once the new one is ready, so
the model stays warm without a gap.

Target: ``partition``, ``account``, ``time_limit_minutes``, ``renew_before_seconds``
(default 600), ``gpus_per_node`` (checked against ``gpus_per_instance``), ``gres`` (the
GPU gres name, default ``gpu``), ``cpus_per_task``, ``mem``, ``sbatch_lines`` (extra
``#SBATCH`` options), ``workdir`` (default: this checkout), ``ports`` ([low, high]).

This is the only module that runs Slurm's commands. They read ``SLURM_CONF`` from the
environment like any Slurm client.
"""

from __future__ import annotations

import datetime as dt
import logging
import shlex
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from string import Template
from typing import Any

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

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = PROJECT_ROOT / "deploy" / "slurm" / "vllm.sbatch"
COMMAND_TIMEOUT = 30.0
RUNNING_STATES = {"RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING"}
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "RESIZING", "SUSPENDED"}


class SlurmError(LaunchError):
    """A Slurm command failed; the message quotes what it said."""


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SlurmError(f"{argv[0]} failed: {exc}") from None
    if done.returncode != 0:
        raise SlurmError(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def render_script(spec: Spec, *, port: int, job_name: str, log_path: Path) -> str:
    """The sbatch script for one instance of ``spec`` listening on ``port``."""
    target = spec.target
    lines = []
    if target.get("time_limit_minutes"):
        lines.append(f"--time={int(target['time_limit_minutes'])}")
    for key, option in (("partition", "partition"), ("account", "account"), ("mem", "mem")):
        if target.get(key):
            lines.append(f"--{option}={target[key]}")
    if target.get("cpus_per_task"):
        lines.append(f"--cpus-per-task={int(target['cpus_per_task'])}")
    if spec.gpus_per_instance:
        lines.append(f"--gres={target.get('gres', 'gpu')}:{spec.gpus_per_instance}")
    lines += [str(line).removeprefix("#SBATCH ").strip() for line in target.get("sbatch_lines", [])]
    engine = engine_for(spec)
    environment = {"PYTHONUNBUFFERED": "1", **engine.environment(port=port, host="0.0.0.0")}
    return Template(TEMPLATE.read_text()).substitute(
        job_name=job_name,
        log_path=str(log_path),
        workdir=str(target.get("workdir") or PROJECT_ROOT),
        sbatch_lines="\n".join(f"#SBATCH {line}" for line in lines),
        port=port,
        environment="\n".join(f"export {k}={shlex.quote(v)}" for k, v in environment.items()),
        command=shlex.join(engine.command(port=port, host="0.0.0.0")),
    )


class SlurmLauncher(Launcher):
    kind = "slurm"

    def check(self, spec: Spec) -> list[tuple[str, str]]:
        problems = check_ports(spec)
        target = spec.target
        if shutil.which("sbatch") is None:
            problems.append(
                ("deployment.launcher", "sbatch is not on this machine's PATH (not a submit host)")
            )
        per_node = target.get("gpus_per_node")
        if per_node is not None and (not isinstance(per_node, int) or per_node < 0):
            problems.append(("deployment.target.gpus_per_node", "must be a whole number"))
        elif per_node is not None and spec.gpus_per_instance > per_node:
            problems.append(
                (
                    "deployment.gpus_per_instance",
                    f"asks for {spec.gpus_per_instance} GPUs per instance, but a node of the "
                    f"target has {per_node} (target.gpus_per_node)",
                )
            )
        limit = target.get("time_limit_minutes")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            problems.append(("deployment.target.time_limit_minutes", "must be at least 1"))
        elif limit is not None and _renew_before(target) >= limit * 60:
            problems.append(
                (
                    "deployment.target.renew_before_seconds",
                    f"must be shorter than the time limit ({limit * 60} s)",
                )
            )
        lines = target.get("sbatch_lines", [])
        if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
            problems.append(("deployment.target.sbatch_lines", "must be a list of strings"))
        return problems

    def plan(self, spec: Spec, *, instance_id: int, placed: Placed) -> InstancePlan:
        # Slurm picks the node and its GPUs; CAIPI only keeps its own jobs' ports apart.
        low, high = port_range(spec)
        for port in range(low, high + 1):
            if port not in placed.ports:
                return InstancePlan(instance_id, (), port)
        raise LaunchError(f"port range {low}-{high} is exhausted: every port is taken")

    def start(self, spec: Spec, plan: InstancePlan) -> Handle:
        from django.conf import settings

        assert plan.port is not None
        log_dir = Path(settings.DATA_DIR) / "logs" / "instances"
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"caipi-{spec.name.replace('/', '_')}-{plan.instance_id}"
        log_path = log_dir / f"{name}.log"
        script = render_script(spec, port=plan.port, job_name=name, log_path=log_path)
        script_path = log_dir / f"{name}.sbatch"
        script_path.write_text(script)
        job_id = _run("sbatch", "--parsable", str(script_path)).strip().split(";")[0]
        logger.info("submitted Slurm job %s for %s (port %d)", job_id, spec.name, plan.port)
        return {
            "job_id": job_id,
            "port": plan.port,
            "log": str(log_path),
            "script": str(script_path),
            "time_limit": spec.target.get("time_limit_minutes"),
            "renew_before": _renew_before(spec.target),
        }

    def status(self, handle: Handle) -> InstanceStatus:
        job_id = str(handle["job_id"])
        try:
            out = _run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T|%N|%S|%r")
        except SlurmError as exc:
            if "Invalid job id" in str(exc):
                return InstanceStatus(RunState.GONE, detail=f"Slurm no longer knows job {job_id}")
            raise
        line = out.strip().splitlines()[0] if out.strip() else ""
        if not line:
            return InstanceStatus(RunState.GONE, detail=f"Slurm no longer knows job {job_id}")
        state, node, start, reason = [*line.split("|"), "", "", ""][:4]
        if state in PENDING_STATES:
            return InstanceStatus(RunState.PENDING, detail=f"job {job_id} pending ({reason})")
        if state not in RUNNING_STATES:
            return InstanceStatus(
                RunState.EXITED, detail=f"the Slurm job {job_id} ended: {state} ({reason})"
            )
        url = f"http://{_node_address(node)}:{handle['port']}"
        return InstanceStatus(RunState.RUNNING, url=url, renew_due=_renew_due(handle, start))

    def stop(self, handle: Handle, *, grace: float = 10.0) -> None:
        job_id = str(handle["job_id"])
        try:
            _run("scancel", job_id)
        except SlurmError as exc:
            logger.warning("scancel %s: %s", job_id, exc)
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.status(handle).state in (RunState.EXITED, RunState.GONE):
                return
            time.sleep(0.1)

    def logs(self, handle: Handle, *, lines: int = 30) -> str:
        try:
            with open(handle["log"], encoding="utf-8", errors="replace") as log:
                return "".join(deque(log, maxlen=lines))
        except (KeyError, FileNotFoundError):
            return ""


def _renew_before(target: dict[str, Any]) -> int:
    return int(target.get("renew_before_seconds", 600))


def _renew_due(handle: Handle, start: str) -> bool:
    """True once the job is within ``renew_before`` seconds of its time limit."""
    if not handle.get("time_limit"):
        return False
    try:
        started = dt.datetime.fromisoformat(start)
    except ValueError:
        return False
    ends = started.timestamp() + int(handle["time_limit"]) * 60
    return time.time() >= ends - int(handle.get("renew_before", 600))


_addresses: dict[str, str] = {}


def _node_address(node: str) -> str:
    """The address a node's engines are reached at (its NodeAddr), cached per process."""
    if node not in _addresses:
        out = _run("scontrol", "show", "node", node)
        found = [w.split("=", 1)[1] for w in out.split() if w.startswith("NodeAddr=")]
        _addresses[node] = found[0] if found else node
    return _addresses[node]


LAUNCHER = SlurmLauncher()
