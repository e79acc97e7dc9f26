"""The Slurm launcher against a real single-node Slurm: the rendered sbatch script, a model
at zero scaling up on a burst and back to zero, a job cancelled from outside replaced, and
a job near its time limit renewed without a gap."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid

import pytest

from deploy import demand
from deploy.launchers.slurm import render_script
from deploy.models import InstanceState, ScalingDecision
from deploy.reconciler import reconcile
from deploy.specs import SpecInvalid, spec_check, spec_parse
from tests.deploy.conftest import live, sim_spec, tick_until
from tests.deploy.test_reconciler import _burst


def slurm_spec(**deployment) -> dict:
    fields = {"launcher": "slurm", "target": {"ports": [22000, 22999]}, **deployment}
    return sim_spec("sim-slurm", **fields)


def test_the_sbatch_script_asks_for_the_gpus_and_time_and_runs_the_engine_in_front(tmp_path):
    spec = spec_parse(
        {
            "name": "qwen",
            "deployment": {
                "engine": "vllm",
                "engine_args": {"model_path": "/models/qwen", "tensor_parallel_size": 2},
                "gpus_per_instance": 2,
                "launcher": "slurm",
                "target": {
                    "partition": "gpu",
                    "time_limit_minutes": 720,
                    "sbatch_lines": ["--constraint=a100"],
                },
            },
        }
    )
    script = render_script(spec, port=8123, job_name="caipi-qwen-7", log_path=tmp_path / "x.log")
    assert "#SBATCH --gres=gpu:2" in script
    assert "#SBATCH --time=720" in script and "#SBATCH --partition=gpu" in script
    assert "#SBATCH --constraint=a100" in script
    assert (
        "exec vllm serve /models/qwen --host 0.0.0.0 --port 8123 --served-model-name qwen "
        "--tensor-parallel-size 2" in script
    )
    assert "setsid" not in script.split("exec")[-1]


def test_a_spec_asking_for_more_gpus_than_a_node_has_is_refused():
    spec = spec_parse(
        slurm_spec(gpus_per_instance=8, target={"gpus_per_node": 4, "time_limit_minutes": 5})
    )
    with pytest.raises(SpecInvalid) as caught:
        spec_check(spec)
    assert caught.value.message_dict == {
        "deployment.gpus_per_instance": [
            "asks for 8 GPUs per instance, but a node of the target has 4 (target.gpus_per_node)"
        ],
        "deployment.target.renew_before_seconds": ["must be shorter than the time limit (300 s)"],
    }


def test_a_model_at_zero_scales_up_as_a_slurm_job_serves_a_burst_and_scales_back(slurm, apply_spec):
    deployment = apply_spec(slurm_spec(engine_args={"options": ["--startup-delay", "0.5"]}))
    ticket = uuid.uuid4().hex
    asyncio.run(
        demand.demand_note_waiting(
            model_id=deployment.model_id, ticket=ticket, until=time.time() + 60
        )
    )
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=60)
    (instance,) = live(deployment, "ready")
    job_id = instance.handle["job_id"]
    assert "RUNNING" in slurm.run("squeue", "-h", "-j", job_id, "-o", "%T")
    assert _burst(instance.url, "sim-slurm", 200) == [200] * 200
    asyncio.run(demand.demand_done(model_id=deployment.model_id, ticket=ticket))

    tick_until(deployment, lambda: not live(deployment), timeout=60)
    state = slurm.run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T").strip()
    assert state in ("CANCELLED", "COMPLETED")
    reasons = list(ScalingDecision.objects.order_by("at").values_list("reason", flat=True))
    assert reasons == ["1 calls waiting and no instance", "no call for 2 s (idle time)"]


def test_a_job_cancelled_from_outside_is_replaced(slurm, apply_spec):
    deployment = apply_spec(slurm_spec(min_instances=1))
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=60)
    (first,) = live(deployment, "ready")
    subprocess.run(["scancel", first.handle["job_id"]], env=slurm.env, check=True)
    tick_until(
        deployment,
        lambda: any(i.pk != first.pk for i in live(deployment, "ready")),
        timeout=60,
    )
    first.refresh_from_db()
    assert first.state == InstanceState.FAILED
    assert first.error.startswith(f"the Slurm job {first.handle['job_id']} ended: CANCELLED")
    assert first.endpoint is None


def test_a_job_near_its_time_limit_is_renewed_before_it_ends_without_a_gap(slurm, apply_spec):
    deployment = apply_spec(
        slurm_spec(min_instances=1, target={"time_limit_minutes": 1, "renew_before_seconds": 50})
    )
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=60)
    (first,) = live(deployment, "ready")
    gaps = []

    def renewed() -> bool:
        ready = live(deployment, "ready")
        if not ready and not live(deployment, "draining"):
            gaps.append(time.monotonic())
        first.refresh_from_db()
        return first.state == InstanceState.STOPPED and bool(ready)

    tick_until(deployment, renewed, timeout=60, every=0.5)
    (second,) = live(deployment, "ready")
    assert second.pk != first.pk and second.started_at < first.stopped_at
    assert gaps == []  # a ready instance at every tick
    report = reconcile(deployment_id=deployment.pk)
    assert report.started == []
