"""Calls for a model with no ready endpoint wait instead of failing (caipi.gateway.waiting).

Real parts only: the /v1 ASGI app, PostgreSQL, and simulators with a start-up delay or in
sleep mode standing in for vLLM on a GPU.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async

from caipi.gateway.catalog import catalog
from deploy import demand, services
from deploy.models import Endpoint, EndpointState, Model
from tests.support.simulator import SimulatorHandle, free_port, running_simulator

pytestmark = pytest.mark.usefixtures("_gateway_loop_cleanup")

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
STARTUP = 1.5


@pytest.fixture
def starting_sim() -> Iterator[SimulatorHandle]:
    with running_simulator(model="sim-model", ttft=0.01, tpot=0.001, startup_delay=STARTUP) as s:
        yield s


def starting_model(url: str, state: str = EndpointState.STARTING) -> Model:
    """'tutor' with one endpoint in ``state``, as the reconciler registers a new instance."""
    model = services.model_create(name="tutor", served_name="sim-model")
    services.endpoint_add(model=model, url=url, state=state)
    catalog().reload()
    return model


@pytest.fixture
def fast_queue(settings) -> None:
    settings.GATEWAY_QUEUE_PROBE_SECONDS = 0.05
    settings.GATEWAY_QUEUE_STATUS_SECONDS = 0.2


async def test_a_burst_at_a_starting_model_waits_and_every_call_is_served(
    v1, starting_sim, fast_queue
) -> None:
    await sync_to_async(starting_model)(starting_sim.url)
    started = time.monotonic()
    answers = await asyncio.gather(*(v1.post("/v1/chat/completions", json=CHAT) for _ in range(40)))
    assert [a.status_code for a in answers] == [200] * 40, [
        a.text for a in answers if a.status_code != 200
    ]
    assert all(a.json()["model"] == "tutor" for a in answers)
    assert time.monotonic() - started < STARTUP + 1.0
    endpoint = await Endpoint.objects.aget(url=starting_sim.url)
    assert endpoint.state == EndpointState.READY


async def test_a_streaming_caller_hears_sse_comments_while_it_waits(
    v1, starting_sim, fast_queue
) -> None:
    await sync_to_async(starting_model)(starting_sim.url)
    response = await v1.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200
    lines = response.text.split("\n\n")
    comments = [line for line in lines if line.startswith(":")]
    assert comments, response.text
    assert comments[0].startswith(": model tutor is starting: position 1 of 1, about ")
    events = [line for line in lines if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    assert all(orjson.loads(e[6:])["model"] == "tutor" for e in events[:-1])


async def test_a_full_queue_refuses_with_503_and_retry_after(v1, settings, fast_queue) -> None:
    settings.GATEWAY_QUEUE_SIZE = 2
    settings.GATEWAY_QUEUE_MAX_WAIT = 1.5
    await sync_to_async(starting_model)("http://127.0.0.1:9")  # never starts
    waiting = [asyncio.create_task(v1.post("/v1/chat/completions", json=CHAT)) for _ in range(2)]
    await asyncio.sleep(0.3)
    refused = await v1.post("/v1/chat/completions", json=CHAT)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(settings.GATEWAY_RETRY_AFTER)
    error = refused.json()["error"]
    assert "2 calls already wait" in error["message"] and "CAIPI_QUEUE_SIZE" in error["message"]
    assert error["reason"] == "queue_full"
    await asyncio.gather(*waiting)


async def test_a_call_that_waited_too_long_is_told_why(v1, settings, fast_queue) -> None:
    settings.GATEWAY_QUEUE_MAX_WAIT = 1.0
    await sync_to_async(starting_model)("http://127.0.0.1:9")
    started = time.monotonic()
    refused = await v1.post("/v1/chat/completions", json=CHAT)
    assert 1.0 <= time.monotonic() - started < 3.0
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == str(settings.GATEWAY_RETRY_AFTER)
    error = refused.json()["error"]
    assert "did not become ready within 1 s" in error["message"]
    assert "CAIPI_QUEUE_MAX_WAIT" in error["message"] and error["reason"] == "start_timeout"


async def test_a_stream_that_waited_too_long_ends_with_an_error_event(
    v1, settings, fast_queue
) -> None:
    settings.GATEWAY_QUEUE_MAX_WAIT = 0.6
    await sync_to_async(starting_model)("http://127.0.0.1:9")
    response = await v1.post("/v1/chat/completions", json={**CHAT, "stream": True})
    assert response.status_code == 200  # the stream had begun with keep-alive comments
    events = [line for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    error = orjson.loads(events[-2][6:])["error"]
    assert error["reason"] == "start_timeout" and "did not become ready" in error["message"]


async def test_a_model_that_cannot_start_still_fails_at_once(v1, settings) -> None:
    model = await sync_to_async(services.model_create)(name="tutor", served_name="sim-model")
    await sync_to_async(services.endpoint_add)(
        model=model, url="http://127.0.0.1:9", state=EndpointState.DRAINING
    )
    await sync_to_async(catalog().reload)()
    started = time.monotonic()
    refused = await v1.post("/v1/chat/completions", json=CHAT)
    assert refused.status_code == 503 and time.monotonic() - started < 1.0


@pytest.fixture
def sleepy_sim() -> Iterator[SimulatorHandle]:
    with running_simulator(
        model="sim-model", ttft=0.01, tpot=0.001, enable_sleep_mode=True, sleep_time=0.1,
        wake_time=1.0,
    ) as handle:  # fmt: skip
        yield handle


def is_sleeping(sim: SimulatorHandle) -> bool:
    return bool(httpx.get(f"{sim.url}/is_sleeping").json()["is_sleeping"])


def sleeping_model(url: str) -> Model:
    model = services.model_create(name="tutor", served_name="sim-model")
    endpoint = services.endpoint_add(model=model, url=url)
    services.endpoint_sleep(endpoint=endpoint, level=1)
    catalog().reload()
    return model


async def test_the_first_waiting_call_wakes_a_sleeping_endpoint(v1, sleepy_sim, fast_queue) -> None:
    await sync_to_async(sleeping_model)(sleepy_sim.url)
    assert await asyncio.to_thread(is_sleeping, sleepy_sim) is True
    started = time.monotonic()
    answers = await asyncio.gather(*(v1.post("/v1/chat/completions", json=CHAT) for _ in range(10)))
    took = time.monotonic() - started
    assert [a.status_code for a in answers] == [200] * 10
    assert 1.0 <= took < 1.0 + 0.5
    assert await asyncio.to_thread(is_sleeping, sleepy_sim) is False
    endpoint = await Endpoint.objects.aget(url=sleepy_sim.url)
    assert endpoint.state == EndpointState.READY


async def test_an_endpoint_that_fell_asleep_again_is_woken_again_by_the_next_call(
    v1, sleepy_sim, fast_queue, settings
) -> None:
    settings.DEPLOY_WAKE_TIMEOUT = 8.0  # how long a wake claim would be held at most
    model = await sync_to_async(sleeping_model)(sleepy_sim.url)
    assert (await v1.post("/v1/chat/completions", json=CHAT)).status_code == 200
    endpoint = await Endpoint.objects.aget(url=sleepy_sim.url)
    await sync_to_async(services.endpoint_sleep)(endpoint=endpoint, level=1)
    await sync_to_async(catalog().reload)()
    assert catalog().models[model.name].endpoints[0].state == EndpointState.SLEEPING

    started = time.monotonic()
    again = await v1.post("/v1/chat/completions", json=CHAT)

    assert again.status_code == 200
    assert time.monotonic() - started < 1.0 + 1.0  # one wake time, not the wake timeout


# -- fairness between courses, end to end through the course chat ---------------------------


async def _until(condition, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not await sync_to_async(condition)():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _chat(client, course_id: int, order: list[int]) -> int:
    body = {"model": "tutor", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 5}
    response = await client.post(
        "/api/chat/",
        orjson.dumps({**body, "course_id": course_id}),
        content_type="application/json",
    )
    raw = b"".join([chunk async for chunk in response.streaming_content])
    assert b"data: [DONE]\n\n" in raw, raw[-300:]  # (the page's rendered Markdown follows it)
    assert b'"caipi_status"' in raw  # it waited, and the page was told where it stood
    order.append(course_id)
    return response.status_code


async def test_a_course_batch_cannot_starve_another_course_while_the_model_starts(
    student, outsider, course, other_course, settings, fast_queue
) -> None:
    """Alice's course sends 12 questions first, then Charlie's (another course) sends 3: the
    queue releases them round-robin per course, one at a time (the engine runs one call at
    a time), so Charlie's are answered among the first six, not after all of Alice's."""
    from django.test import AsyncClient

    settings.GATEWAY_QUEUE_RELEASE_PER_ENDPOINT = 1
    port = free_port()  # the instance being started: it answers once the test starts it
    model = await sync_to_async(starting_model)(f"http://127.0.0.1:{port}")
    first, second = AsyncClient(), AsyncClient()
    await first.aforce_login(student)
    await second.aforce_login(outsider)
    order: list[int] = []
    batch = [asyncio.create_task(_chat(first, course.pk, order)) for _ in range(12)]
    await asyncio.sleep(0.5)  # the batch is queued before the other course asks
    others = [asyncio.create_task(_chat(second, other_course.pk, order)) for _ in range(3)]
    await _until(lambda: demand.demand_waiting(model_id=model.pk) == 15)
    # The engine serves one call at a time, so the order of answers is the release order.
    one_at_a_time = {"ttft": 0.02, "tpot": 0.01, "output_tokens": 5, "max_num_seqs": 1}
    with running_simulator(model="sim-model", port=port, **one_at_a_time):
        statuses = await asyncio.gather(*batch, *others)
    assert statuses == [200] * 15
    served_other = [i for i, course_id in enumerate(order) if course_id == other_course.pk]
    assert max(served_other) < 6, order
