"""The Docker launcher: each engine instance is one container, through the Docker Engine
API (the ``docker`` SDK, optional extra ``caipi[docker]``; imported only when used).

vLLM runs from its official image with GPUs requested as device requests (``--gpus
device=0,1``), the port published on the host, the model folder mounted, and shared memory
for its workers. ``container_spec`` builds the container's settings as plain data, so they
are tested without a daemon.

Target: ``image`` (default ``vllm/vllm-openai:latest`` for vLLM; required for other
engines), ``gpus`` (device ids CAIPI may use on this Docker host), ``ports`` ([low, high]),
``host`` (the address the engines are reached at, default 127.0.0.1), ``volumes``
(``["/models:/models:ro"]``), ``shm_size`` (default ``16g``), ``docker_url`` (default:
the environment's ``DOCKER_HOST`` or the local socket).
"""

from __future__ import annotations

import logging
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
from deploy.models import EngineKind
from deploy.specs import Spec

logger = logging.getLogger(__name__)

VLLM_IMAGE = "vllm/vllm-openai:latest"
CONTAINER_PORT = 8000
_STATES = {
    "created": RunState.PENDING,
    "restarting": RunState.PENDING,
    "running": RunState.RUNNING,
    "paused": RunState.RUNNING,
    "exited": RunState.EXITED,
    "dead": RunState.EXITED,
    "removing": RunState.EXITED,
}


def _client(target: dict[str, Any]) -> Any:
    import docker

    url = target.get("docker_url")
    return docker.DockerClient(base_url=url) if url else docker.from_env()


def container_spec(spec: Spec, plan: InstancePlan) -> dict[str, Any]:
    """Keyword arguments of ``client.containers.run`` for one instance (plain data)."""
    from docker.types import DeviceRequest

    target = spec.target
    engine = engine_for(spec)
    argv = engine.command(port=CONTAINER_PORT, host="0.0.0.0")
    if spec.engine == EngineKind.VLLM:
        argv = argv[2:]  # the image's entrypoint is the server: pass only its arguments
    image = target.get("image") or VLLM_IMAGE
    settings: dict[str, Any] = {
        "image": image,
        "command": argv,
        "name": f"caipi-{_slug(spec.name)}-{plan.instance_id}",
        "detach": True,
        "ports": {f"{CONTAINER_PORT}/tcp": (str(target.get("host", "127.0.0.1")), plan.port)},
        "environment": dict(engine.environment(port=CONTAINER_PORT, host="0.0.0.0")),
        "volumes": list(target.get("volumes", [])),
        "labels": {"caipi.model": spec.name, "caipi.instance": str(plan.instance_id)},
        "shm_size": str(target.get("shm_size", "16g")),
        "ipc_mode": "host" if spec.gpus_per_instance > 1 else None,
    }
    if plan.gpus:
        settings["device_requests"] = [
            DeviceRequest(device_ids=[str(g) for g in plan.gpus], capabilities=[["gpu"]])
        ]
    return {k: v for k, v in settings.items() if v is not None}


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in name).strip("-.")


class DockerLauncher(Launcher):
    kind = "docker"

    def check(self, spec: Spec) -> list[tuple[str, str]]:
        problems = check_ports(spec)
        gpus = spec.target.get("gpus", [])
        if not isinstance(gpus, list) or not all(isinstance(g, int) for g in gpus):
            problems.append(("deployment.target.gpus", "must be a list of GPU ids, e.g. [0, 1]"))
        elif spec.gpus_per_instance > len(gpus):
            problems.append(
                (
                    "deployment.gpus_per_instance",
                    f"asks for {spec.gpus_per_instance} GPUs per instance, but the target "
                    f"has {len(gpus)} (target.gpus: {gpus})",
                )
            )
        if spec.engine != EngineKind.VLLM and not spec.target.get("image"):
            problems.append(("deployment.target.image", f"the {spec.engine} engine needs an image"))
        return problems

    def plan(self, spec: Spec, *, instance_id: int, placed: Placed) -> InstancePlan:
        free = [g for g in spec.target.get("gpus", []) if g not in placed.gpus]
        if len(free) < spec.gpus_per_instance:
            raise LaunchError(
                f"no free GPUs: an instance needs {spec.gpus_per_instance}, free are {free}"
            )
        low, high = port_range(spec)
        for port in range(low, high + 1):
            if port not in placed.ports:
                return InstancePlan(instance_id, tuple(free[: spec.gpus_per_instance]), port)
        raise LaunchError(f"port range {low}-{high} is exhausted: every port is taken")

    def start(self, spec: Spec, plan: InstancePlan) -> Handle:
        import docker

        try:
            container = _client(spec.target).containers.run(**container_spec(spec, plan))
        except docker.errors.DockerException as exc:
            raise LaunchError(f"Docker refused the container: {exc}") from None
        host = spec.target.get("host", "127.0.0.1")
        return {
            "container": container.id,
            "docker_url": spec.target.get("docker_url"),
            "port": plan.port,
            "gpus": list(plan.gpus),
            "url": f"http://{host}:{plan.port}",
        }

    def _container(self, handle: Handle) -> Any:
        import docker

        try:
            return _client(handle).containers.get(handle["container"])
        except docker.errors.NotFound:
            return None

    def status(self, handle: Handle) -> InstanceStatus:
        container = self._container(handle)
        if container is None:
            return InstanceStatus(RunState.GONE, detail="Docker no longer knows the container")
        state = _STATES.get(container.status, RunState.PENDING)
        detail = f"the container is {container.status}" if state == RunState.EXITED else ""
        return InstanceStatus(state, url=handle["url"], detail=detail)

    def stop(self, handle: Handle, *, grace: float = 10.0) -> None:
        container = self._container(handle)
        if container is not None:
            container.stop(timeout=int(grace))
            container.remove(force=True)

    def logs(self, handle: Handle, *, lines: int = 30) -> str:
        container = self._container(handle)
        if container is None:
            return ""
        return bytes(container.logs(tail=lines)).decode("utf-8", errors="replace")


LAUNCHER = DockerLauncher()
