"""Fixtures for the control plane's tests: specs on the simulator, ticking the reconciler,
and a clean slate of processes (every instance a test started is stopped afterwards)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deploy.demand import demand_forget_local
from deploy.launchers import launcher_for
from deploy.models import LIVE_INSTANCE_STATES, Deployment, Instance
from deploy.reconciler import TickReport, reconcile
from deploy.specs import spec_parse


def sim_spec(name: str = "sim-burst", **deployment: Any) -> dict[str, Any]:
    """A spec document for the simulator under the local launcher; ``deployment`` overrides."""
    fields: dict[str, Any] = {
        "engine": "simulator",
        "engine_args": {"options": ["--ttft", "0.005", "--tpot", "0.001", "--output-tokens", "8"]},
        "launcher": "local",
        "target": {"ports": [21000, 21999]},
        "min_instances": 0,
        "max_instances": 2,
        "idle_seconds": 2,
        "startup_timeout": 30,
        "scaling": {"scale_up_cooldown": 0, "scale_down_cooldown": 0},
    }
    fields.update(deployment)
    return {"name": name, "served_name": name, "deployment": fields}


@pytest.fixture
def apply_spec(db) -> Callable[..., Deployment]:
    from deploy.services import deployment_apply

    def apply(document: dict[str, Any]) -> Deployment:
        return deployment_apply(spec=spec_parse(document))

    return apply


@pytest.fixture(autouse=True)
def _deploy_settings(settings, tmp_path) -> Iterator[None]:
    settings.DATA_DIR = tmp_path
    settings.DEPLOY_RESTART_BACKOFF = 0.2
    settings.DEPLOY_RESTART_BACKOFF_MAX = 1.0
    # No gateway process of its own here: draining need not wait for a routing reload.
    settings.GATEWAY_ROUTING_MAX_AGE = 1.0
    demand_forget_local()
    yield
    demand_forget_local()


@pytest.fixture
def no_leftover_instances(db) -> Iterator[None]:
    """Stop whatever instance a test left running, whatever happened in it."""
    yield
    for instance in Instance.objects.filter(state__in=LIVE_INSTANCE_STATES):
        if instance.handle:
            launcher_for(instance.launcher).stop(instance.handle, grace=2)


def tick_until(
    deployment: Deployment, done: Callable[[], bool], *, timeout: float, every: float = 0.2
) -> list[TickReport]:
    """Run reconciler ticks until ``done()`` or ``timeout`` seconds; return the reports."""
    reports = []
    deadline = time.monotonic() + timeout
    while True:
        reports.append(reconcile(deployment_id=deployment.pk))
        if done():
            return reports
        if time.monotonic() > deadline:
            states = list(deployment.instances.values_list("id", "state", "error"))
            raise AssertionError(f"not done after {timeout} s; instances: {states}")
        time.sleep(every)


def live(deployment: Deployment, state: str | None = None) -> list[Instance]:
    instances = deployment.instances.filter(state__in=LIVE_INSTANCE_STATES)
    return list(instances.filter(state=state) if state else instances)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[Any]:
    """A real single-node Slurm (munge, slurmctld, slurmd) for the whole session; the
    Slurm commands of this process talk to it through SLURM_CONF."""
    import os

    from tests.support.slurm import single_node_slurm, slurm_missing

    missing = slurm_missing()
    if missing:
        pytest.skip(missing)
    with single_node_slurm() as cluster:
        before = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = cluster.env["SLURM_CONF"]
        try:
            yield cluster
        finally:
            if before is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = before


@pytest.fixture
def slurm(slurm_cluster: Any, no_leftover_instances: None) -> Iterator[Any]:
    """The test Slurm, with every job cancelled after the test."""
    import subprocess

    yield slurm_cluster
    subprocess.run(["scancel", "--full", "-u", "root"], env=slurm_cluster.env, check=False)
