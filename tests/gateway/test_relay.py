"""The relay under failure: dead endpoints, hangs, errors, deaths mid-load, disconnects."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async

from caipi.gateway.catalog import catalog
from tests.gateway.conftest import add_model, upstream_requests
from tests.support.simulator import running_simulator

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8}
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard port: nothing listens, connect is refused


async def test_all_endpoints_down_gives_503_with_retry_after(v1):
    await sync_to_async(add_model)("tutor", CLOSED_PORT_URL, "http://127.0.0.1:1")
    response = await v1.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["type"] == "server_error"


async def test_a_hanging_endpoint_is_abandoned_after_the_upstream_timeout(v1, settings):
    settings.GATEWAY_UPSTREAM_TIMEOUT = 0.5
    with running_simulator(model="sim-model", hang_rate=1.0) as hanging:
        await sync_to_async(add_model)("tutor", hanging.url)
        # Without the timeout this call would hang until the test's own time-out fails it.
        response = await v1.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 503


async def test_a_failing_endpoint_is_retried_elsewhere_and_then_skipped(v1, two_simulators):
    good, _ = two_simulators
    with running_simulator(model="sim-model", error_rate=1.0) as bad:
        await sync_to_async(add_model)("tutor", bad.url, good.url)
        for _ in range(30):
            response = await v1.post("/v1/chat/completions", json=CHAT)
            assert response.status_code == 200, response.text
        bad_id = next(e.id for e in catalog().models["tutor"].endpoints if e.base_url == bad.url)
        assert catalog().breakers[bad_id].state == "open"
        # 3 failures opened the breaker; no more calls were sent to the bad endpoint.
        assert upstream_requests(bad) == 0  # 500s are not counted as successes
    assert upstream_requests(good) == 30


async def test_calls_survive_an_endpoint_dying_under_load(v1):
    with (
        running_simulator(model="sim-model", ttft=0.02, tpot=0.002, die_after=10) as dying,
        running_simulator(model="sim-model", ttft=0.02, tpot=0.002) as steady,
    ):
        await sync_to_async(add_model)("tutor", dying.url, steady.url)

        async def one(n: int) -> int:
            body = {**CHAT, "stream": n % 2 == 0}
            return (await v1.post("/v1/chat/completions", json=body)).status_code

        statuses = await asyncio.gather(*(one(n) for n in range(60)))
        assert dying.process.wait(timeout=5) is not None
    assert statuses == [200] * 60


async def test_a_mid_stream_failure_with_no_other_endpoint_ends_with_an_error_event_and_done(
    live_gateway, api_key
):
    # With another endpoint the stream would go on there (see test_continuation.py).
    with running_simulator(model="sim-model", ttft=0.01, tpot=0.05, output_tokens=200) as dying:
        await sync_to_async(add_model)("tutor", dying.url)
        async with httpx.AsyncClient(base_url=live_gateway.url, timeout=10) as http:
            body = {**CHAT, "max_tokens": 200, "stream": True}
            headers = {"Authorization": f"Bearer {api_key}"}
            async with http.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as response:
                assert response.status_code == 200
                chunks = response.aiter_bytes()
                raw = await anext(chunks)
                dying.process.kill()
                raw += b"".join([c async for c in chunks])
    assert b'"code":"upstream_failed"' in raw
    assert raw.endswith(b"data: [DONE]\n\n")


@pytest.mark.usefixtures("_gateway_loop_cleanup")
async def test_a_client_disconnect_stops_the_upstream_generation(live_gateway, api_key):
    with running_simulator(model="sim-model", tpot=0.05, output_tokens=2000) as slow:
        await sync_to_async(add_model)("tutor", slow.url)
        async with httpx.AsyncClient(base_url=live_gateway.url, timeout=10) as http:
            body = {**CHAT, "max_tokens": 2000, "stream": True}
            headers = {"Authorization": f"Bearer {api_key}"}
            async with http.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as response:
                assert response.status_code == 200, await response.aread()
                # Hold the iterator: an abandoned one is closed when collected, and closing it
                # closes the connection, which would be the disconnect this test makes later.
                chunks = response.aiter_bytes()
                await anext(chunks)
                # 100 s of tokens still to come; on a busy machine the engine's gauge may
                # lag the first byte, so give it a moment to show the running request.
                for _ in range(40):
                    if await _running(slow):
                        break
                    await asyncio.sleep(0.05)
                assert await _running(slow)
                await asyncio.sleep(0.5)
                assert await _running(slow), "the generation stopped while the client still reads"
        for _ in range(40):  # the cancellation reaches the engine within a moment
            await asyncio.sleep(0.05)
            if not await _running(slow):
                break
        assert not await _running(slow)


async def _running(sim) -> bool:
    from deploy.vllm_client import scrape_metrics

    load = await scrape_metrics(sim.url, "", within=2)
    assert load is not None
    return load.running > 0


@pytest.mark.parametrize("stream", [False, True])
async def test_an_engine_4xx_is_passed_through_to_the_client(v1, chat_model, stream):
    body = {**CHAT, "max_tokens": 10_000_000, "stream": stream}
    response = await v1.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "maximum context length" in response.json()["error"]["message"]
