"""The simulator's sleep mode answers like vLLM's development endpoints, over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.simulator import SimulatorHandle, running_simulator

CHAT = "/v1/chat/completions"
BODY = {"model": "sim-model", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator(
        model="sim-model", ttft=0.005, tpot=0.001, enable_sleep_mode=True, sleep_time=0.2,
        wake_time=0.6,
    ) as handle:  # fmt: skip
        yield handle


@pytest.fixture
def http(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def test_a_sleeping_engine_refuses_inference_but_stays_healthy(http: httpx.Client) -> None:
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}
    started = time.monotonic()
    assert http.post("/sleep", params={"level": 1}).status_code == 200
    assert time.monotonic() - started >= 0.2
    assert http.get("/is_sleeping").json() == {"is_sleeping": True}
    refused = http.post(CHAT, json=BODY)
    assert refused.status_code == 503
    assert "sleeping" in refused.json()["error"]["message"]
    assert http.get("/health").status_code == 200
    assert http.get("/v1/models").status_code == 200


def test_wake_up_answers_when_the_engine_serves_again(http: httpx.Client) -> None:
    http.post("/sleep", params={"level": 2})
    started = time.monotonic()
    assert http.post("/wake_up").status_code == 200
    assert time.monotonic() - started >= 0.6
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}
    assert http.post(CHAT, json=BODY).status_code == 200
    assert http.post("/wake_up").status_code == 200  # awake already: at once


def test_sleep_refuses_a_bad_level(http: httpx.Client) -> None:
    refused = http.post("/sleep", params={"level": 3})
    assert refused.status_code == 400
    assert http.get("/is_sleeping").json() == {"is_sleeping": False}


def test_sleep_refuses_while_a_request_runs() -> None:
    with (
        running_simulator(model="sim-model", ttft=1.0, enable_sleep_mode=True) as slow,
        httpx.Client(base_url=slow.url, timeout=10) as client,
    ):
        call = threading.Thread(target=lambda: client.post(CHAT, json=BODY))
        call.start()
        time.sleep(0.3)
        refused = client.post("/sleep")
        call.join()
    assert refused.status_code == 400
    assert "requests running" in refused.json()["error"]["message"]


def test_without_sleep_mode_the_endpoints_do_not_exist() -> None:
    with (
        running_simulator(model="sim-model") as plain,
        httpx.Client(base_url=plain.url, timeout=10) as client,
    ):
        assert client.post("/sleep").status_code == 404
        assert client.get("/is_sleeping").status_code == 404
