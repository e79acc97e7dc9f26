"""Putting an endpoint's engine to sleep and waking it (deploy.services), against the simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from django.core.exceptions import ValidationError

from deploy import services
from deploy.models import Endpoint, EndpointState
from deploy.vllm_client import UpstreamError
from tests.support.simulator import SimulatorHandle, running_simulator

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator(
        model="sim-model", enable_sleep_mode=True, sleep_time=0.1, wake_time=0.4
    ) as handle:
        yield handle


@pytest.fixture
def endpoint(sim: SimulatorHandle) -> Iterator[Endpoint]:
    model = services.model_create(name="tutor", served_name="sim-model")
    endpoint = services.endpoint_add(model=model, url=sim.url)
    yield endpoint
    httpx.post(f"{sim.url}/wake_up", timeout=5)  # leave the shared engine awake


def is_sleeping(sim: SimulatorHandle) -> bool:
    return bool(httpx.get(f"{sim.url}/is_sleeping", timeout=5).json()["is_sleeping"])


def test_sleep_puts_the_engine_to_sleep_and_takes_the_endpoint_out_of_routing(
    endpoint: Endpoint, sim: SimulatorHandle
) -> None:
    services.endpoint_sleep(endpoint=endpoint, level=1)
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.SLEEPING
    assert not endpoint.takes_calls
    assert is_sleeping(sim)


def test_wake_returns_when_the_engine_serves_and_the_endpoint_is_ready(
    endpoint: Endpoint, sim: SimulatorHandle
) -> None:
    services.endpoint_sleep(endpoint=endpoint, level=2)
    started = time.monotonic()
    services.endpoint_wake(endpoint=endpoint)
    assert time.monotonic() - started >= 0.4
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.READY
    assert not is_sleeping(sim)


def test_sleep_refuses_a_level_vllm_does_not_have(endpoint: Endpoint, sim: SimulatorHandle) -> None:
    with pytest.raises(ValidationError, match="level"):
        services.endpoint_sleep(endpoint=endpoint, level=3)
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.READY
    assert not is_sleeping(sim)


def test_sleep_refuses_an_endpoint_that_is_not_ready(endpoint: Endpoint) -> None:
    services.endpoint_set_state(endpoint=endpoint, state=EndpointState.STARTING)
    with pytest.raises(ValidationError, match="ready"):
        services.endpoint_sleep(endpoint=endpoint, level=1)


def test_an_engine_without_sleep_mode_stays_ready(db) -> None:
    with running_simulator(model="sim-model") as plain:
        model = services.model_create(name="plain", served_name="sim-model")
        endpoint = services.endpoint_add(model=model, url=plain.url)
        with pytest.raises(UpstreamError) as failed:
            services.endpoint_sleep(endpoint=endpoint, level=1)
    assert failed.value.status == 404 and not failed.value.transient
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.READY


def test_a_wake_that_fails_leaves_the_endpoint_sleeping(db) -> None:
    model = services.model_create(name="gone", served_name="sim-model")
    endpoint = services.endpoint_add(model=model, url="http://127.0.0.1:9", state="sleeping")
    with pytest.raises(UpstreamError):
        services.endpoint_wake(endpoint=endpoint)
    endpoint.refresh_from_db()
    assert endpoint.state == EndpointState.SLEEPING
