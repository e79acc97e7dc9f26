"""Issue 13's "done when": a model at zero instances is called through the gateway; the
calls wait, the reconciler starts an instance, every call is served, and the model scales
back to zero after its idle time — under the local launcher and under a real single-node
Slurm. Real parts: the /v1 ASGI app, PostgreSQL, the reconciler and its launchers, and the
simulator (with a start-up delay) standing in for vLLM."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from caipi.demo.model import ReconcilerThread
from caipi.gateway.catalog import catalog
from deploy.models import Deployment, Instance, ScalingDecision
from tests.deploy.conftest import live, sim_spec
from tests.deploy.test_slurm_launcher import slurm_spec
from tests.gateway.conftest import (  # noqa: F401 (fixtures)
    _fresh_gateway,
    _gateway_loop_cleanup,
    api_key,
    api_user,
    v1,
)
from tests.support.clock import wait_until

pytestmark = pytest.mark.usefixtures("no_leftover_instances", "_gateway_loop_cleanup")

STARTUP = 1.5  # the simulator's start-up delay, seconds
IDLE = 3  # the deployment's idle time before it scales to zero, seconds
CALLS = 60


@pytest.fixture
def gateway(v1: httpx.AsyncClient) -> httpx.AsyncClient:  # noqa: F811 (the fixture)
    """An HTTP client of the /v1 ASGI app, authenticated with Erin's API key."""
    return v1


def cold(document: dict[str, Any]) -> dict[str, Any]:
    """The spec with the simulator's start-up delay and a short idle time."""
    deployment = document["deployment"]
    options = [*deployment["engine_args"]["options"], "--startup-delay", str(STARTUP)]
    deployment["engine_args"] = {**deployment["engine_args"], "options": options}
    deployment["idle_seconds"] = IDLE
    return document


async def burst(client: httpx.AsyncClient, model: str, calls: int) -> list[httpx.Response]:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    return list(
        await asyncio.gather(
            *(client.post("/v1/chat/completions", json=body) for _ in range(calls))
        )
    )


def failures(answers: list[httpx.Response]) -> list[str]:
    return [f"{a.status_code}: {a.text[:200]}" for a in answers if a.status_code != 200]


def reasons(deployment: Deployment) -> list[str]:
    decisions = ScalingDecision.objects.filter(deployment=deployment).order_by("at", "id")
    return list(decisions.values_list("reason", flat=True))


async def at_zero(apply_spec: Callable[..., Deployment], document: dict[str, Any]) -> Deployment:
    deployment = await sync_to_async(apply_spec)(document)
    await sync_to_async(catalog().reload)()
    route = catalog().models[deployment.model.name]
    assert route.startable and route.endpoints == ()
    return deployment


def until_none_live(deployment: Deployment, timeout: float) -> None:
    try:
        wait_until(lambda: not live(deployment), timeout=timeout, what="back to zero instances")
    finally:
        connections.close_all()  # this pool thread's connection


async def scaled_to_zero(deployment: Deployment, *, within: float) -> list[Instance]:
    """Let the periodic reconciler run until no instance is live; the stopped instances."""
    ticker = ReconcilerThread(deployment.pk, every=0.3)
    ticker.start()
    try:
        await asyncio.to_thread(until_none_live, deployment, within)
    finally:
        await asyncio.to_thread(ticker.stop)
    return await sync_to_async(list)(deployment.instances.all())


async def test_under_the_local_launcher_a_burst_at_zero_starts_one_instance_at_once_is_served_and_scales_back(  # noqa: E501
    gateway, apply_spec
) -> None:
    deployment = await at_zero(apply_spec, cold(sim_spec("sim-cold")))

    # No periodic tick runs: the waiting calls themselves ask the reconciler for a start.
    answers = await burst(gateway, "sim-cold", CALLS)

    assert failures(answers) == []
    assert all(a.json()["model"] == "sim-cold" for a in answers)
    (instance,) = await sync_to_async(list)(deployment.instances.all())
    instances = await scaled_to_zero(deployment, within=30)
    assert [i.pk for i in instances] == [instance.pk]
    assert [i.state for i in instances] == ["stopped"]
    decided = await sync_to_async(reasons)(deployment)
    assert decided[0].endswith("calls waiting and no instance")
    assert decided[1:] == [f"no call for {IDLE} s (idle time)"]
    await sync_to_async(catalog().reload)()
    assert catalog().models["sim-cold"].endpoints == ()


async def test_under_slurm_a_burst_at_zero_starts_a_job_is_served_and_the_job_ends_after_the_idle_time(  # noqa: E501
    slurm, gateway, apply_spec
) -> None:
    deployment = await at_zero(apply_spec, cold(slurm_spec(min_instances=0)))
    # A job's address is known only once it runs: the periodic tick registers its endpoint.
    ticker = ReconcilerThread(deployment.pk, every=0.3)
    ticker.start()
    try:
        answers = await burst(gateway, "sim-slurm", CALLS)
    finally:
        await asyncio.to_thread(ticker.stop)

    assert failures(answers) == []
    (instance,) = await sync_to_async(list)(deployment.instances.all())
    job_id = instance.handle["job_id"]
    instances = await scaled_to_zero(deployment, within=60)
    assert [(i.pk, i.state) for i in instances] == [(instance.pk, "stopped")]
    state = slurm.run("squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T").strip()
    assert state in ("CANCELLED", "COMPLETED")
    decided = await sync_to_async(reasons)(deployment)
    assert decided[0].endswith("calls waiting and no instance")
    assert decided[1:] == [f"no call for {IDLE} s (idle time)"]
