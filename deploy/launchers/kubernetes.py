"""The Kubernetes launcher: each engine instance is one Deployment (one replica) with a
Service in front, applied through the Kubernetes API (the ``kubernetes`` client, optional
extra ``caipi[kubernetes]``; imported only when used).

One Deployment per instance, not one scaled Deployment per model, so that the reconciler
keeps deciding which instance starts, drains and stops (draining needs to pick one), the
same as under the other launchers. GPUs are requested as ``nvidia.com/gpu`` limits and the
scheduler picks the node; the pod's readiness probe is the engine's health path.
``manifests`` builds both objects as plain data, validated in the tests against
Kubernetes' schemas (``kubernetes-validate``), since no cluster runs there.

Target: ``namespace`` (default ``caipi``), ``image`` (default vLLM's), ``gpu_resource``
(default ``nvidia.com/gpu``), ``node_selector``, ``volumes`` (``[{"name", "claim",
"mount"}]``: PersistentVolumeClaims holding the models), ``shm_size``, ``in_cluster``
(default true: CAIPI runs in the cluster; false: the local kubeconfig).
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
    engine_for,
)
from deploy.launchers.docker import VLLM_IMAGE, _slug
from deploy.models import EngineKind
from deploy.specs import Spec

logger = logging.getLogger(__name__)

CONTAINER_PORT = 8000
KUBERNETES_VERSION = "1.30"


def manifests(spec: Spec, plan: InstancePlan) -> list[dict[str, Any]]:
    """The Deployment and Service of one instance, as the API's JSON."""
    target = spec.target
    name = f"caipi-{_slug(spec.name).lower()}-{plan.instance_id}"[:63].rstrip("-.")
    labels = {"app.kubernetes.io/name": "caipi-engine", "caipi/instance": str(plan.instance_id)}
    engine = engine_for(spec)
    argv = engine.command(port=CONTAINER_PORT, host="0.0.0.0")
    container: dict[str, Any] = {
        "name": "engine",
        "image": target.get("image") or VLLM_IMAGE,
        "args": argv[2:] if spec.engine == EngineKind.VLLM else argv,
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
        "env": [
            {"name": k, "value": v}
            for k, v in engine.environment(port=CONTAINER_PORT, host="0.0.0.0").items()
        ],
        "readinessProbe": {
            "httpGet": {"path": engine.health_path, "port": "http"},
            "periodSeconds": 5,
        },
        # vLLM's workers share tensors through /dev/shm inside the container.
        "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}],  # noqa: S108
    }
    volumes: list[dict[str, Any]] = [
        {
            "name": "shm",
            "emptyDir": {"medium": "Memory", "sizeLimit": target.get("shm_size", "16Gi")},
        }
    ]
    for volume in target.get("volumes", []):
        volumes.append(
            {"name": volume["name"], "persistentVolumeClaim": {"claimName": volume["claim"]}}
        )
        container["volumeMounts"].append({"name": volume["name"], "mountPath": volume["mount"]})
    if spec.gpus_per_instance:
        gpu = target.get("gpu_resource", "nvidia.com/gpu")
        container["resources"] = {"limits": {gpu: spec.gpus_per_instance}}
    pod: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if target.get("node_selector"):
        pod["nodeSelector"] = dict(target["node_selector"])
    namespace = target.get("namespace", "caipi")
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {
                "selector": labels,
                "ports": [{"name": "http", "port": CONTAINER_PORT, "targetPort": "http"}],
            },
        },
    ]


def _apis(in_cluster: bool) -> tuple[Any, Any]:
    from kubernetes import client, config

    if in_cluster:
        config.load_incluster_config()
    else:
        config.load_kube_config()
    return client.AppsV1Api(), client.CoreV1Api()


class KubernetesLauncher(Launcher):
    kind = "kubernetes"

    def check(self, spec: Spec) -> list[tuple[str, str]]:
        problems = []
        if spec.engine != EngineKind.VLLM and not spec.target.get("image"):
            problems.append(("deployment.target.image", f"the {spec.engine} engine needs an image"))
        for index, volume in enumerate(spec.target.get("volumes", [])):
            if not isinstance(volume, dict) or not {"name", "claim", "mount"} <= set(volume):
                problems.append(
                    (f"deployment.target.volumes[{index}]", "needs name, claim and mount")
                )
        return problems

    def plan(self, spec: Spec, *, instance_id: int, placed: Placed) -> InstancePlan:
        return InstancePlan(instance_id, (), CONTAINER_PORT)  # the scheduler places it

    def start(self, spec: Spec, plan: InstancePlan) -> Handle:
        from kubernetes.client.exceptions import ApiException

        deployment, service = manifests(spec, plan)
        namespace = deployment["metadata"]["namespace"]
        in_cluster = bool(spec.target.get("in_cluster", True))
        apps, core = _apis(in_cluster)
        try:
            apps.create_namespaced_deployment(namespace, deployment)
            core.create_namespaced_service(namespace, service)
        except ApiException as exc:
            raise LaunchError(f"Kubernetes refused the instance: {exc.reason}") from None
        name = deployment["metadata"]["name"]
        return {
            "name": name,
            "namespace": namespace,
            "in_cluster": in_cluster,
            "url": f"http://{name}.{namespace}.svc:{CONTAINER_PORT}",
        }

    def status(self, handle: Handle) -> InstanceStatus:
        from kubernetes.client.exceptions import ApiException

        apps, _ = _apis(handle["in_cluster"])
        try:
            found = apps.read_namespaced_deployment_status(handle["name"], handle["namespace"])
        except ApiException as exc:
            if exc.status == 404:
                return InstanceStatus(RunState.GONE, detail="Kubernetes no longer has it")
            raise
        running = (found.status.ready_replicas or 0) >= 1
        return InstanceStatus(RunState.RUNNING if running else RunState.PENDING, url=handle["url"])

    def stop(self, handle: Handle, *, grace: float = 10.0) -> None:
        from kubernetes.client.exceptions import ApiException

        apps, core = _apis(handle["in_cluster"])
        for delete in (apps.delete_namespaced_deployment, core.delete_namespaced_service):
            try:
                delete(handle["name"], handle["namespace"], grace_period_seconds=int(grace))
            except ApiException as exc:
                if exc.status != 404:
                    raise

    def logs(self, handle: Handle, *, lines: int = 30) -> str:
        _, core = _apis(handle["in_cluster"])
        pods = core.list_namespaced_pod(
            handle["namespace"], label_selector=f"caipi/instance={handle['name'].rsplit('-', 1)[1]}"
        )
        for pod in pods.items:
            return str(
                core.read_namespaced_pod_log(
                    pod.metadata.name, handle["namespace"], tail_lines=lines
                )
            )
        return ""


LAUNCHER = KubernetesLauncher()
