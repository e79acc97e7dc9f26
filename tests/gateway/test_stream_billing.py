"""Every token streamed is paid for (issue 9, item 2), on the real relay and a real Redis.

The simulator sends eight tokens per SSE event (``--stream-interval 8``), as vLLM does
under load; CAIPI asks it for usage in every chunk (``continuous_usage_stats``), strips
that from what the client did not ask for, and settles a stream the client abandons
from the last usage the engine reported.
"""

from __future__ import annotations

import time
import urllib.request

import httpx
import orjson
import pytest

from tests.gateway.conftest import add_model
from tests.support.simulator import running_simulator

pytestmark = pytest.mark.redis

MAX_TOKENS = 400
CHAT = {
    "model": "tutor",
    "messages": [{"role": "user", "content": "Explain entropy at length."}],
    "max_tokens": MAX_TOKENS,
    "stream": True,
}


@pytest.fixture
def chunky_engine(transactional_db):
    with running_simulator(
        model="sim-model", ttft=0.01, tpot=0.01, stream_interval=8, output_tokens=MAX_TOKENS
    ) as sim:
        add_model("tutor", sim.url)
        yield sim


def _events(raw: bytes) -> list[dict]:
    lines = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: {")]
    return [orjson.loads(line) for line in lines]


def _generated(sim) -> float:
    with urllib.request.urlopen(f"{sim.url}/metrics", timeout=2) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("vllm:generation_tokens_total")
    )


def _settled(charged, reserved: int) -> int:
    """What the counter holds once the abandoned call was settled (it starts at the
    reservation and drops when the relay closes the call)."""
    deadline = time.monotonic() + 10
    while (value := charged()) == reserved and time.monotonic() < deadline:
        time.sleep(0.05)
    return value


def test_a_client_that_leaves_mid_stream_pays_for_every_token_generated(
    live_gateway, api_key, chunky_engine, output_budget
):
    received = ""
    with httpx.Client(base_url=live_gateway.url, timeout=30) as client:
        headers = {"Authorization": f"Bearer {api_key}"}
        with client.stream("POST", "/v1/chat/completions", json=CHAT, headers=headers) as answer:
            assert answer.status_code == 200
            for line in answer.iter_lines():
                if line.startswith("data: {"):
                    event = orjson.loads(line[6:])
                    assert "usage" not in event  # the client did not ask for it
                    received += "".join(c["delta"].get("content") or "" for c in event["choices"])
                if len(received.split()) >= 40:
                    break  # and the connection closes: the client went away
    charged = _settled(output_budget, MAX_TOKENS)
    assert len(received.split()) <= charged < MAX_TOKENS
    assert charged >= _generated(chunky_engine) - 8  # at most the one event in flight


async def test_a_client_that_asked_for_usage_in_every_chunk_gets_it(v1, chunky_engine):
    body = {
        **CHAT,
        "max_tokens": 24,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
    }
    async with v1.stream("POST", "/v1/chat/completions", json=body) as answer:
        events = _events(b"".join([chunk async for chunk in answer.aiter_bytes()]))
    counts = [e["usage"]["completion_tokens"] for e in events if e["choices"]]
    assert counts[-1] == 24 and counts == sorted(counts)


async def test_a_stream_without_options_still_ends_with_its_usage_chunk(v1, chunky_engine):
    async with v1.stream("POST", "/v1/chat/completions", json={**CHAT, "max_tokens": 24}) as a:
        events = _events(b"".join([chunk async for chunk in a.aiter_bytes()]))
    assert all("usage" not in e for e in events[:-1])
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 24
