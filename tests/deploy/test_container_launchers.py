"""The Docker and Kubernetes launchers, tested on what they generate (no Docker daemon and
no cluster run here): the container settings through the Docker SDK's own types, and the
manifests validated against Kubernetes' schemas with kubernetes-validate."""

from __future__ import annotations

import kubernetes_validate
import pytest

from deploy.launchers.base import InstancePlan, Placed
from deploy.launchers.docker import LAUNCHER as DOCKER
from deploy.launchers.docker import container_spec
from deploy.launchers.kubernetes import KUBERNETES_VERSION, manifests
from deploy.specs import SpecInvalid, spec_check, spec_parse


def _vllm(launcher: str, **target) -> dict:
    return {
        "name": "Qwen/Qwen2.5-7B-Instruct",
        "deployment": {
            "engine": "vllm",
            "engine_args": {
                "model_path": "/models/qwen2.5-7b",
                "tensor_parallel_size": 2,
                "max_model_len": 8192,
                "quantization": "fp8",
            },
            "gpus_per_instance": 2,
            "launcher": launcher,
            "target": target,
        },
    }


def test_a_vllm_container_gets_its_gpus_port_and_model_volume():
    spec = spec_parse(_vllm("docker", gpus=[0, 1, 2, 3], volumes=["/models:/models:ro"]))
    plan = DOCKER.plan(spec, instance_id=7, placed=Placed(gpus=frozenset({0, 1})))
    settings = container_spec(spec, plan)
    assert settings["image"] == "vllm/vllm-openai:latest"
    assert settings["command"][:1] == ["/models/qwen2.5-7b"]
    assert "--tensor-parallel-size" in settings["command"]
    assert settings["command"][-2:] == ["--quantization", "fp8"]
    (request,) = settings["device_requests"]
    assert request["DeviceIDs"] == ["2", "3"] and request["Capabilities"] == [["gpu"]]
    assert settings["ports"] == {"8000/tcp": ("127.0.0.1", 8100)}
    assert settings["volumes"] == ["/models:/models:ro"] and settings["ipc_mode"] == "host"
    assert settings["name"] == "caipi-Qwen-Qwen2.5-7B-Instruct-7"


def test_docker_refuses_more_gpus_than_the_host_offers_and_engines_without_an_image():
    with pytest.raises(SpecInvalid) as caught:
        spec_check(spec_parse(_vllm("docker", gpus=[0])))
    assert "deployment.gpus_per_instance" in caught.value.message_dict
    simulator = {"name": "s", "deployment": {"engine": "simulator", "launcher": "docker"}}
    with pytest.raises(SpecInvalid) as caught:
        spec_check(spec_parse(simulator))
    assert caught.value.message_dict == {
        "deployment.target.image": ["the simulator engine needs an image"]
    }


def test_kubernetes_manifests_are_valid_against_the_schema_and_request_the_gpus():
    spec = spec_parse(
        _vllm(
            "kubernetes",
            namespace="llm",
            volumes=[{"name": "models", "claim": "models-pvc", "mount": "/models"}],
            node_selector={"gpu": "a100"},
        )
    )
    deployment, service = manifests(spec, InstancePlan(12, (), 8000))
    for manifest in (deployment, service):
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 2}}
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert deployment["metadata"]["name"] == "caipi-qwen-qwen2.5-7b-instruct-12"
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_a_broken_manifest_would_be_caught_by_the_schema_check():
    spec = spec_parse(_vllm("kubernetes"))
    deployment, _ = manifests(spec, InstancePlan(1, (), 8000))
    deployment["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kubernetes_volumes_need_a_name_claim_and_mount():
    with pytest.raises(SpecInvalid) as caught:
        spec_check(spec_parse(_vllm("kubernetes", volumes=[{"name": "models"}])))
    assert caught.value.message_dict == {
        "deployment.target.volumes[0]": ["needs name, claim and mount"]
    }
