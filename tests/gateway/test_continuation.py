"""A stream whose engine dies mid-way goes on on another endpoint: one answer, charged once.

Engines are real simulators, killed (SIGKILL) while they stream; the simulator's answers
are deterministic, so the joined answer can be compared with what one engine writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import orjson
import pytest
import redis.asyncio as aredis
from asgiref.sync import sync_to_async

from caipi.gateway.background import TICK
from caipi.gateway.catalog import catalog
from caipi.gateway.inflight import InFlight
from caipi.governance.services.usage import usage_flush
from tests.gateway.conftest import add_model
from tests.support.simulator import SimulatorHandle, running_simulator

TOKENS = 40
HELLO = [{"role": "user", "content": "Hello"}]
SLOW = {"model": "sim-model", "ttft": 0.01, "tpot": 0.04, "output_tokens": TOKENS}


def sse(raw: bytes) -> list[Any]:
    """The JSON events of an SSE body, "[DONE]" kept as a string."""
    found: list[Any] = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            payload = event.removeprefix(b"data: ")
            found.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return found


def text_of(events: list[Any]) -> str:
    return "".join(
        choice["delta"].get("content") or ""
        for event in events
        if isinstance(event, dict)
        for choice in event.get("choices", ())
    )


def final_usage(events: list[Any]) -> dict[str, Any]:
    """The usage-only event that ends the answer (``"choices": []``)."""
    [final] = [e for e in events if isinstance(e, dict) and e.get("choices") == [] and "usage" in e]
    return final


def running(sim: SimulatorHandle) -> bool:
    try:
        metrics = httpx.get(f"{sim.url}/metrics", timeout=2).text
    except httpx.HTTPError:
        return False
    return any(
        line.startswith("vllm:num_requests_running") and float(line.rsplit(" ", 1)[1]) > 0
        for line in metrics.splitlines()
    )


async def kill_the_one_streaming(*sims: SimulatorHandle) -> SimulatorHandle:
    """SIGKILL the simulator that is generating the stream right now."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for sim in sims:
            if sim.process.poll() is None and await asyncio.to_thread(running, sim):
                sim.process.kill()
                sim.process.wait(timeout=5)
                return sim
        await asyncio.sleep(0.02)
    raise AssertionError("no simulator was streaming")


async def read_killing(chunks: AsyncIterator[bytes], sims: list[SimulatorHandle], kills: int):
    """Read a stream to its end, killing its engine ``kills`` times, each after a few
    more tokens came."""
    raw = b""
    killed: list[SimulatorHandle] = []
    async for chunk in chunks:
        raw += chunk
        if len(killed) < kills and raw.count(b'"content":"') >= 4 * (len(killed) + 1):
            killed.append(await kill_the_one_streaming(*sims))
    return raw, killed


async def one_engine_answer(sim: SimulatorHandle, **body: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sim.url, timeout=10) as http:
        payload = {"model": "sim-model", "messages": HELLO, "max_tokens": TOKENS, **body}
        return (await http.post("/v1/chat/completions", json=payload)).json()


async def stream_through(gateway_url: str, api_key: str, sims, kills: int, **extra: Any):
    async with httpx.AsyncClient(base_url=gateway_url, timeout=20) as http:
        body = {"model": "tutor", "messages": HELLO, "max_tokens": 100, "stream": True, **extra}
        headers = {"Authorization": f"Bearer {api_key}"}
        async with http.stream(
            "POST", "/v1/chat/completions", json=body, headers=headers
        ) as response:
            assert response.status_code == 200
            return await read_killing(response.aiter_bytes(), sims, kills)


async def the_usage_record() -> Any:
    from caipi.governance.models import UsageRecord

    for _ in range(100):  # the call is closed just after its last byte went out
        await sync_to_async(usage_flush)()
        records = await sync_to_async(list)(UsageRecord.objects.all())
        if records:
            return records
        await asyncio.sleep(0.05)
    raise AssertionError("no usage was recorded")


async def test_a_stream_whose_engine_dies_goes_on_elsewhere_as_one_answer(live_gateway, api_key):
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, killed = await stream_through(live_gateway.url, api_key, [first, second], kills=1)
        survivor = second if killed == [first] else first
        expected = await one_engine_answer(survivor)
        records = await the_usage_record()
    events = sse(raw)
    assert b"error" not in raw
    assert events[-1] == "[DONE]"
    assert text_of(events) == expected["choices"][0]["message"]["content"]
    assert len({event["id"] for event in events[:-1]}) == 1
    assert len({event["created"] for event in events[:-1]}) == 1
    assert {event["model"] for event in events[:-1]} == {"tutor"}
    roles = [e for e in events[:-1] if e["choices"] and "role" in e["choices"][0]["delta"]]
    assert len(roles) == 1  # the continuation's own opening is left out
    final = final_usage(events)
    assert final["caipi"] == {"continued": 1}
    # Charged once: the prompt once, every generated token of both engines.
    assert final["usage"]["prompt_tokens"] == expected["usage"]["prompt_tokens"]
    assert final["usage"]["completion_tokens"] == TOKENS
    [record] = records
    assert (record.prompt_tokens, record.completion_tokens) == (
        expected["usage"]["prompt_tokens"],
        TOKENS,
    )
    assert record.outcome == "ok"


@pytest.mark.redis
async def test_a_continued_stream_is_charged_once_against_its_reservation(
    live_gateway, api_key, output_budget
):
    charged = output_budget
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, _ = await stream_through(live_gateway.url, api_key, [first, second], kills=1)
        for _ in range(100):  # settled just after the last byte went out
            if charged() == TOKENS:
                break
            await asyncio.sleep(0.05)
    assert b'"continued":1' in raw
    # The reservation was max_tokens (100); settled once at every generated token.
    assert charged() == TOKENS


async def test_a_long_answer_goes_on_from_the_text_read_out_along_the_way(
    live_gateway, api_key, monkeypatch
):
    from caipi.gateway import relay

    monkeypatch.setattr(relay, "KEEP_BYTES", 300)  # a few events, then only their text
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, killed = await stream_through(live_gateway.url, api_key, [first, second], kills=1)
        survivor = second if killed == [first] else first
        expected = await one_engine_answer(survivor)
    events = sse(raw)
    assert text_of(events) == expected["choices"][0]["message"]["content"]
    assert len({event["id"] for event in events[:-1]}) == 1


async def test_a_continuation_the_engine_refuses_ends_with_the_error_event(live_gateway, api_key):
    # 107 tokens fit (prompt 7 + max_tokens 100); the prompt with the answer so far and
    # the tokens left come to 110 and are refused with 400.
    engine = {**SLOW, "max_model_len": 108}
    with running_simulator(**engine) as first, running_simulator(**engine) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, killed = await stream_through(live_gateway.url, api_key, [first, second], kills=1)
        [record] = await the_usage_record()
    assert len(killed) == 1
    assert b'"code":"upstream_failed"' in raw
    assert raw.endswith(b"data: [DONE]\n\n")
    assert record.outcome == "error"
    assert record.completion_tokens >= 3  # killed after 4 content events, the role's one


async def test_a_completion_stream_goes_on_from_the_prompt_and_its_text(live_gateway, api_key):
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        async with httpx.AsyncClient(base_url=live_gateway.url, timeout=20) as http:
            body = {"model": "tutor", "prompt": "Once", "max_tokens": 100, "stream": True}
            headers = {"Authorization": f"Bearer {api_key}"}
            async with http.stream(
                "POST", "/v1/completions", json=body, headers=headers
            ) as response:
                raw, killed = b"", False
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if raw.count(b'"text":"') >= 4 and not killed:
                        killed = bool(await kill_the_one_streaming(first, second))
        [record] = await the_usage_record()
    events = sse(raw)
    assert b"error" not in raw
    assert len({event["id"] for event in events[:-1]}) == 1
    final = final_usage(events)
    assert final["caipi"] == {"continued": 1}
    assert final["usage"]["prompt_tokens"] == 1  # "Once": the first engine's count, once
    assert final["usage"]["completion_tokens"] == record.completion_tokens > TOKENS
    assert record.prompt_tokens == 1


async def test_a_continuation_that_dies_too_goes_on_on_a_third_engine(
    live_gateway, api_key, settings
):
    settings.GATEWAY_CIRCUIT_FAILURES = 1  # one failure shows as an open breaker
    with (
        running_simulator(**SLOW) as first,
        running_simulator(**SLOW) as second,
        running_simulator(**SLOW) as third,
    ):
        sims = [first, second, third]
        await sync_to_async(add_model)("tutor", *(sim.url for sim in sims))
        raw, killed = await stream_through(live_gateway.url, api_key, sims, kills=2)
        [survivor] = [sim for sim in sims if sim not in killed]
        expected = await one_engine_answer(survivor)
        [record] = await the_usage_record()
    endpoints = {endpoint.base_url: endpoint.id for endpoint in catalog().models["tutor"].endpoints}
    breakers = {sim.url: catalog().breaker(endpoints[sim.url]).state for sim in sims}
    events = sse(raw)
    assert b"error" not in raw
    assert text_of(events) == expected["choices"][0]["message"]["content"]
    assert final_usage(events)["caipi"] == {"continued": 2}
    assert final_usage(events)["usage"]["completion_tokens"] == TOKENS == record.completion_tokens
    assert record.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert record.endpoint_id == endpoints[survivor.url]
    assert [breakers[sim.url] for sim in killed] == ["open", "open"]  # each death counted
    assert breakers[survivor.url] == "closed"


async def test_with_no_endpoint_left_the_stream_ends_with_the_error_event(live_gateway, api_key):
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, killed = await stream_through(live_gateway.url, api_key, [first, second], kills=2)
        [record] = await the_usage_record()
    assert len(killed) == 2
    assert b'"code":"upstream_failed"' in raw
    assert raw.endswith(b"data: [DONE]\n\n")
    events = sse(raw)
    # The answer so far, from both engines: killed after 4 and 8 content events (the
    # first is the role's, empty).
    assert len(text_of(events).split()) >= 7
    # Both engines' tokens are charged, the prompt once.
    assert record.completion_tokens >= 7
    assert record.prompt_tokens < 2 * 7
    assert record.outcome == "error"


async def test_a_tool_call_stream_is_not_continued(live_gateway, api_key):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        raw, killed = await stream_through(
            live_gateway.url, api_key, [first, second], kills=1, tools=tools
        )
        others = [sim for sim in (first, second) if sim not in killed]
        assert not await asyncio.to_thread(running, others[0])
    assert b'"code":"upstream_failed"' in raw
    assert b'"caipi"' not in raw


@pytest.mark.usefixtures("_gateway_loop_cleanup")
async def test_the_course_chat_goes_on_elsewhere_too(async_client, student, course):
    with running_simulator(**SLOW) as first, running_simulator(**SLOW) as second:
        await sync_to_async(add_model)("tutor", first.url, second.url)
        await async_client.aforce_login(student)
        body = {"model": "tutor", "messages": HELLO, "max_tokens": 100, "course_id": course.pk}
        response = await async_client.post(
            "/api/chat/", orjson.dumps(body), content_type="application/json"
        )
        assert response.status_code == 200
        raw, killed = await read_killing(response.streaming_content, [first, second], kills=1)
        survivor = second if killed == [first] else first
        expected = await one_engine_answer(survivor)
    events = sse(raw)
    assert b"error" not in raw
    assert text_of(events) == expected["choices"][0]["message"]["content"]
    assert final_usage(events)["caipi"] == {"continued": 1}


@pytest.mark.parametrize("go_on", [True, False], ids=["continued", "not-continued"])
async def test_calls_in_flight_survive_one_of_three_engines_killed(
    live_gateway, api_key, settings, go_on
):
    """200 streamed and 200 whole calls in flight; one of three engines dies mid-way
    (when its streams are 30 tokens in). Streams that can go on elsewhere all end well;
    without continuing, those on the dead engine end with the error event."""
    settings.GATEWAY_CONTINUE_STREAMS = go_on
    engine = {"model": "sim-model", "ttft": 0.05, "tpot": 0.02, "output_tokens": 100}
    with (
        running_simulator(**engine, die_mid_stream=30) as dying,
        running_simulator(**engine) as second,
        running_simulator(**engine) as third,
    ):
        await sync_to_async(add_model)("tutor", dying.url, second.url, third.url)
        limits = httpx.Limits(max_connections=500, max_keepalive_connections=500)
        headers = {"Authorization": f"Bearer {api_key}"}
        async with httpx.AsyncClient(
            base_url=live_gateway.url, timeout=60, limits=limits, headers=headers
        ) as http:

            async def one(n: int) -> str:
                body = {"model": "tutor", "messages": HELLO, "max_tokens": 100}
                if n % 2:
                    response = await http.post("/v1/chat/completions", json=body)
                    return "whole ok" if response.status_code == 200 else "whole failed"
                body["stream"] = True
                async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    raw = await response.aread()
                if response.status_code != 200 or b'"upstream_failed"' in raw:
                    return "stream failed"
                return "stream continued" if b'"continued"' in raw else "stream ok"

            ends = await asyncio.gather(*(one(n) for n in range(400)))
        assert dying.process.wait(timeout=5) == 1
    counts = {end: ends.count(end) for end in sorted(set(ends))}
    print(f"\ncontinue={go_on}: {counts}")  # the measured numbers (pytest -s)
    assert counts.get("whole ok") == 200
    if go_on:
        assert counts.get("stream failed", 0) == 0
        assert counts.get("stream continued", 0) > 0
    else:
        assert counts.get("stream failed", 0) > 0


@asynccontextmanager
async def others_busy_on(redis_url: str, counts: dict[str, int]) -> AsyncIterator[None]:
    """Another gateway process with ``counts`` calls in flight on the endpoints at these
    URLs, published to Redis every tick as a real one does: the router here prefers the
    endpoints the others use least, so the test decides where a stream starts and goes on."""
    ids = {endpoint.base_url: endpoint.id for endpoint in catalog().models["tutor"].endpoints}
    other = InFlight()
    for url, count in counts.items():
        for _ in range(count):
            other.acquire(ids[url])
    client = aredis.Redis.from_url(redis_url)

    async def publish() -> None:
        while True:
            await other.sync(client)
            await asyncio.sleep(TICK)

    task = asyncio.create_task(publish())
    wanted = {ids[url]: count for url, count in counts.items()}
    for _ in range(40):  # published, and read by the gateway's own sync (every tick)
        if catalog().inflight.remote == wanted:
            break
        await asyncio.sleep(TICK / 2)
    assert catalog().inflight.remote == wanted, "the gateway does not see the other's calls"
    try:
        yield
    finally:
        task.cancel()
        await other.forget(client)
        await client.aclose()


async def settled(charged: Any, expected: int) -> int:
    for _ in range(100):  # settled just after the last byte went out
        if charged() == expected:
            break
        await asyncio.sleep(0.05)
    return int(charged())


@pytest.mark.redis
async def test_a_continuation_engine_that_dies_too_hands_on_to_a_third_charged_once(
    output_budget, redis_url, live_gateway, api_key
):  # the budget first: it points the gateway at the test Redis before the gateway starts
    charged = output_budget
    with (
        running_simulator(**SLOW) as first,
        running_simulator(**SLOW, die_mid_stream=16) as dying,
        running_simulator(**SLOW) as third,
    ):
        await sync_to_async(add_model)("tutor", first.url, dying.url, third.url)
        # Starts on ``first`` (killed at four words), goes on on ``dying`` (dies by itself
        # at its 16th token), then on ``third``.
        async with others_busy_on(redis_url, {dying.url: 50, third.url: 100}):
            raw, killed = await stream_through(live_gateway.url, api_key, [first], kills=1)
        expected = await one_engine_answer(third)
        [record] = await the_usage_record()
        assert dying.process.wait(timeout=5) == 1  # it died by itself, mid-continuation
    events = sse(raw)
    assert killed == [first]
    assert b"error" not in raw
    assert text_of(events) == expected["choices"][0]["message"]["content"]
    assert len({event["id"] for event in events[:-1]}) == 1
    final = final_usage(events)
    assert final["caipi"] == {"continued": 2}
    assert final["usage"]["completion_tokens"] == TOKENS == record.completion_tokens
    assert record.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert record.outcome == "ok"
    # One reservation (max_tokens 100), settled once at the tokens of all three engines.
    assert await settled(charged, TOKENS) == TOKENS


@pytest.mark.redis
async def test_a_continuation_engine_that_dies_with_none_left_ends_with_the_error_event(
    output_budget, redis_url, live_gateway, api_key
):
    charged = output_budget
    with (
        running_simulator(**SLOW) as first,
        running_simulator(**SLOW, die_mid_stream=8) as dying,
    ):
        await sync_to_async(add_model)("tutor", first.url, dying.url)
        async with others_busy_on(redis_url, {dying.url: 50}):
            raw, killed = await stream_through(live_gateway.url, api_key, [first], kills=1)
        [record] = await the_usage_record()
        assert dying.process.wait(timeout=5) == 1
    assert killed == [first]
    assert b'"code":"upstream_failed"' in raw
    assert b'"caipi"' not in raw  # no final usage event claims a whole continued answer
    assert raw.endswith(b"data: [DONE]\n\n")
    words = len(text_of(sse(raw)).split())
    assert words >= 4 + 7  # four from the first engine, about eight from the second
    assert record.outcome == "error"
    assert record.completion_tokens >= words
    # Charged once, for what both engines generated; the rest of the reservation returned.
    assert await settled(charged, record.completion_tokens) == record.completion_tokens
