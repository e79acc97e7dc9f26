"""Deployment specs are validated before anything starts, naming the bad field."""

from __future__ import annotations

import pytest

from deploy.specs import SpecInvalid, spec_check, spec_parse
from tests.deploy.conftest import sim_spec


def _problems(document: dict) -> dict[str, list[str]]:
    with pytest.raises(SpecInvalid) as caught:
        spec_check(spec_parse(document))
    return caught.value.message_dict


def _vllm(**deployment) -> dict:
    fields = {
        "engine": "vllm",
        "engine_args": {"model_path": "Qwen/Qwen2.5-7B-Instruct", "tensor_parallel_size": 2},
        "gpus_per_instance": 2,
        "launcher": "local",
        "target": {"gpus": [0, 1]},
        **deployment,
    }
    return {"name": "qwen", "deployment": fields}


def test_a_valid_spec_is_parsed_with_its_defaults():
    spec = spec_parse(sim_spec())
    assert spec.name == spec.served_name == "sim-burst"
    assert spec.engine == "simulator" and spec.launcher == "local"
    assert spec.max_instances == 2 and spec.idle_seconds == 2
    spec_check(spec)


def test_an_unknown_launcher_is_refused_naming_the_field():
    problems = _problems(sim_spec(launcher="nomad"))
    assert problems == {
        "deployment.launcher": [
            "unknown launcher 'nomad'; choose one of local, slurm, docker, kubernetes"
        ]
    }


def test_more_gpus_than_the_target_has_is_refused():
    problems = _problems(_vllm(gpus_per_instance=4, engine_args={"model_path": "m"}))
    assert problems["deployment.gpus_per_instance"] == [
        "asks for 4 GPUs per instance, but the target has 2 (target.gpus: [0, 1])"
    ]


def test_a_model_path_that_does_not_exist_here_is_refused(tmp_path):
    missing = tmp_path / "no-such-model"
    problems = _problems(_vllm(engine_args={"model_path": str(missing)}))
    assert problems["deployment.engine_args.model_path"] == [
        f"{missing} does not exist on this machine"
    ]


def test_tensor_parallelism_needs_as_many_gpus_per_instance():
    problems = _problems(_vllm(gpus_per_instance=1, target={"gpus": [0, 1]}))
    assert "deployment.engine_args.tensor_parallel_size" in problems


def test_every_bad_field_is_named_at_once():
    document = sim_spec(min_instances=3, max_instances=1, sleep_level=5, warm_windows=["x"])
    document["deployment"]["engine_args"] = {"options": "--fast", "model_path": "/m"}
    with pytest.raises(SpecInvalid) as caught:
        spec_parse(document)
    assert set(caught.value.message_dict) == {
        "deployment.max_instances",
        "deployment.sleep_level",
        "deployment.warm_windows[0]",
        "deployment.engine_args.options",
        "deployment.engine_args.model_path",
    }


def test_sleep_mode_is_refused_for_an_engine_without_it():
    document = sim_spec(engine="llamacpp", sleep_level=1, engine_args={})
    with pytest.raises(SpecInvalid) as caught:
        spec_parse(document)
    assert caught.value.message_dict == {
        "deployment.sleep_level": ["the llamacpp engine has no sleep mode"]
    }


def test_a_spec_without_a_deployment_or_name_is_refused():
    with pytest.raises(SpecInvalid) as caught:
        spec_parse({"served_name": "x"})
    assert set(caught.value.message_dict) == {"name", "deployment"}
    with pytest.raises(SpecInvalid):
        spec_parse(["not", "a", "mapping"])


def test_ports_must_be_a_range():
    assert "deployment.target.ports" in _problems(sim_spec(target={"ports": [9000, 80]}))
