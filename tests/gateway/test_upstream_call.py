"""Engines that hang or die (issue 9, item 7): a time-to-first-byte limit with failover, and
a non-streamed call whose client leaves is cancelled upstream and charged what ran.

Real simulators: one that never answers (``--hang-rate 1``) and one that works; the
hanging one is given the higher weight so the router always tries it first.
"""

from __future__ import annotations

import socket
import time
import urllib.request
from urllib.parse import urlsplit

import orjson
import pytest

from caipi.gateway.catalog import catalog
from deploy.models import Endpoint
from tests.gateway.conftest import add_model
from tests.support.simulator import running_simulator

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Define entropy."}]}


@pytest.fixture
def hanging_then_working(transactional_db, settings):
    settings.GATEWAY_TTFB_TIMEOUT = 0.5
    with (
        running_simulator(model="sim-model", hang_rate=1.0) as hanging,
        running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as working,
    ):
        model = add_model("tutor", hanging.url, working.url)
        Endpoint.objects.filter(model=model, url=hanging.url).update(weight=10)
        catalog().reload()
        yield hanging, working


def _failures(hanging_url: str) -> float:
    from caipi.gateway.metrics import UPSTREAM_FAILURES

    endpoint = Endpoint.objects.get(url=hanging_url)
    return UPSTREAM_FAILURES.labels("tutor", str(endpoint.pk))._value.get()


@pytest.mark.parametrize("stream", [True, False])
async def test_a_hanging_engine_is_left_after_the_ttfb_limit_for_another_endpoint(
    v1, hanging_then_working, stream
):
    hanging, _ = hanging_then_working
    from asgiref.sync import sync_to_async

    before = await sync_to_async(_failures)(hanging.url)
    response = await v1.post(
        "/v1/chat/completions", json={**CHAT, "max_tokens": 5, "stream": stream}
    )
    assert response.status_code == 200, response.text
    assert b"[DONE]" in response.content if stream else response.json()["choices"]
    assert await sync_to_async(_failures)(hanging.url) == before + 1


@pytest.fixture
def slow_engine(transactional_db):
    with running_simulator(model="sim-model", ttft=0.01, tpot=0.05, output_tokens=200) as sim:
        add_model("tutor", sim.url)
        yield sim


def _engine(sim, series: str, label: str = "") -> float:
    """The sum of a series on the engine's /metrics (only lines carrying ``label``)."""
    with urllib.request.urlopen(f"{sim.url}/metrics", timeout=2) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(series) and label in line
    )


def _wait_for(check, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.redis
def test_a_non_streamed_call_whose_client_leaves_is_cancelled_upstream(
    live_gateway, api_key, slow_engine, output_budget
):
    body = orjson.dumps({**CHAT, "max_tokens": 200})
    parts = urlsplit(live_gateway.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: testserver\r\n"
            f"Authorization: Bearer {api_key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        _wait_for(lambda: output_budget() == 200)  # reserved: the call is running
        time.sleep(0.3)

    def aborted() -> float:
        return _engine(slow_engine, "vllm:request_success_total", 'finished_reason="abort"')

    _wait_for(lambda: aborted() >= 1)
    assert aborted() == 1  # the engine stopped generating
    generated = _engine(slow_engine, "vllm:generation_tokens_total")
    assert generated < 200
    _wait_for(lambda: output_budget() != 200)
    assert generated <= output_budget() < 200  # charged what ran, not the whole answer
