"""The one interface every launcher implements: check, start, status, stop, logs.

A launcher is the only module that talks to its system (local processes, Slurm, Docker,
Kubernetes). The reconciler (``deploy.reconciler``) never asks how: it hands a launcher a
validated ``Spec`` and an ``InstancePlan`` (which GPUs, which port), keeps the JSON
``handle`` it gets back in the ``Instance`` row, and later passes that handle to
``status``/``stop``/``logs`` — possibly from another worker process, so a handle holds
everything needed to find the instance again.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from deploy.engines import Engine, LlamaCppEngine, SimulatorEngine, VllmEngine
from deploy.models import EngineKind
from deploy.specs import Spec

Handle = dict[str, Any]
DEFAULT_PORTS = (8100, 8999)


class LaunchError(RuntimeError):
    """The launcher could not start an instance (no free port, the system refused); the
    message says why and is shown to the admin."""


class RunState(enum.StrEnum):
    """What the launcher's system says about an instance."""

    PENDING = "pending"  # accepted, not running yet (a queued Slurm job)
    RUNNING = "running"  # its process runs; whether it serves is the health path's call
    EXITED = "exited"  # it ended by itself (crash, time limit, cancelled from outside)
    GONE = "gone"  # the system does not know it (any more)


@dataclass(frozen=True)
class InstanceStatus:
    """``url`` is known once the instance runs (a Slurm job's node is known only then)."""

    state: RunState
    url: str | None = None
    detail: str = ""
    renew_due: bool = False  # a job near its time limit: start its successor now


@dataclass(frozen=True)
class InstancePlan:
    """Where one new instance goes: the GPUs it gets and the port it listens on."""

    instance_id: int
    gpus: tuple[int, ...] = ()
    port: int | None = None


@dataclass(frozen=True)
class Placed:
    """Resources live instances of the same target already hold."""

    gpus: frozenset[int] = frozenset()
    ports: frozenset[int] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)


def engine_for(spec: Spec, *, port_hint: int | None = None) -> Engine:
    """The engine a spec runs, with its arguments."""
    args = spec.engine_args
    if spec.engine == EngineKind.VLLM:
        extra = list(args.get("extra_args") or [])
        if args.get("quantization"):
            extra += ["--quantization", str(args["quantization"])]
        if spec.sleep_level:
            extra.append("--enable-sleep-mode")
        return VllmEngine(
            model=str(args["model_path"]),
            served_model_name=spec.served_name,
            max_model_len=args.get("max_model_len"),
            gpu_memory_utilization=args.get("gpu_memory_utilization"),
            tensor_parallel_size=int(args.get("tensor_parallel_size", 1)),
            extra_args=tuple(extra),
        )
    if spec.engine == EngineKind.LLAMACPP:
        from pathlib import Path

        path = args.get("model_path")
        return LlamaCppEngine(
            served_model_name=spec.served_name,
            model_path=Path(path) if path else None,
            n_ctx=int(args.get("n_ctx", 2048)),
            threads=int(args.get("threads", 1)),
            extra_args=tuple(args.get("extra_args") or ()),
        )
    options = tuple(args.get("options") or ())
    if spec.sleep_level and "--enable-sleep-mode" not in options:
        options += ("--enable-sleep-mode",)
    return SimulatorEngine(served_model_name=spec.served_name, options=options)


def port_range(spec: Spec) -> tuple[int, int]:
    """The target's ``ports: [low, high]`` (inclusive), or the default range."""
    ports = spec.target.get("ports") or DEFAULT_PORTS
    return int(ports[0]), int(ports[1])


def check_ports(spec: Spec) -> list[tuple[str, str]]:
    """Problems with ``target.ports`` (shared by the launchers that pick ports)."""
    ports = spec.target.get("ports")
    if ports is None:
        return []
    ok = (
        isinstance(ports, list)
        and len(ports) == 2
        and all(isinstance(p, int) and not isinstance(p, bool) for p in ports)
        and 1024 <= ports[0] <= ports[1] <= 65535
    )
    if not ok:
        return [("deployment.target.ports", "must be [low, high] with 1024 <= low <= high")]
    return []


class Launcher(ABC):
    """Starts, watches and stops engine instances in one kind of place."""

    kind: ClassVar[str]

    @abstractmethod
    def check(self, spec: Spec) -> list[tuple[str, str]]:
        """Problems that stop ``spec`` running on its target, as (field, message) pairs."""

    @abstractmethod
    def plan(self, spec: Spec, *, instance_id: int, placed: Placed) -> InstancePlan:
        """Choose GPUs and a port for a new instance. Raises LaunchError when none are free."""

    @abstractmethod
    def start(self, spec: Spec, plan: InstancePlan) -> Handle:
        """Start one instance and return at once (not yet healthy) with its handle."""

    @abstractmethod
    def status(self, handle: Handle) -> InstanceStatus:
        """What the system says about the instance now. Never raises for a gone instance."""

    @abstractmethod
    def stop(self, handle: Handle, *, grace: float = 10.0) -> None:
        """Stop the instance (gracefully, then by force). Safe to call twice."""

    @abstractmethod
    def logs(self, handle: Handle, *, lines: int = 30) -> str:
        """The last ``lines`` lines of the instance's output ("" when there are none)."""

    def held(self, handles: Sequence[Handle]) -> Placed:
        """The GPUs and ports that these live instances' handles hold."""
        gpus: set[int] = set()
        ports: set[int] = set()
        for handle in handles:
            gpus.update(int(g) for g in handle.get("gpus", ()))
            if handle.get("port"):
                ports.add(int(handle["port"]))
        return Placed(gpus=frozenset(gpus), ports=frozenset(ports))
