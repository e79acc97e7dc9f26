"""Health polling: /health and /metrics read, failing endpoints leave rotation and return."""

from __future__ import annotations

import asyncio

from deploy import vllm_client
from deploy.health import UNHEALTHY_AFTER, health_read, poll_and_store
from deploy.selectors import EndpointRoute
from deploy.vllm_client import parse_metrics
from tests.support.simulator import running_simulator

NEW_NAMES = """
# HELP vllm:num_requests_running Number of requests in model execution batches.
vllm:num_requests_running{model_name="m",engine="0"} 3.0
vllm:num_requests_running{model_name="m",engine="1"} 2.0
vllm:num_requests_waiting{model_name="m",engine="0"} 4.0
vllm:kv_cache_usage_perc{model_name="m",engine="0"} 0.25
vllm:kv_cache_usage_perc{model_name="m",engine="1"} 0.5
vllm:request_queue_time_seconds_sum{model_name="m",engine="0"} 1.5
vllm:request_queue_time_seconds_count{model_name="m",engine="0"} 3.0
"""


def test_metrics_parser_sums_engine_cores_and_takes_the_fullest_kv_cache():
    load = parse_metrics(NEW_NAMES)
    assert (load.running, load.waiting, load.kv_usage) == (5.0, 4.0, 0.5)
    assert (load.queue_time_sum, load.queue_time_count) == (1.5, 3.0)


def test_metrics_parser_reads_the_old_kv_cache_name():
    assert parse_metrics("vllm:gpu_cache_usage_perc 0.75\n").kv_usage == 0.75
    assert parse_metrics("garbage\nvllm:num_requests_running x\n").running == 0.0


async def test_a_poll_reads_load_from_a_real_engine_without_billed_requests():
    with running_simulator(model="sim-model", legacy_metrics=True) as sim:
        endpoint = EndpointRoute(id=101, base_url=sim.url)
        try:
            [snapshot] = await poll_and_store([endpoint])
            [again] = await poll_and_store([endpoint])
        finally:
            await vllm_client.close_session()
    assert snapshot.healthy and again.healthy and again.failures == 0
    assert snapshot.running == 0 and snapshot.kv_usage == 0.0
    stored = await asyncio.to_thread(health_read, [101])
    assert stored[101].checked_at == again.checked_at


async def test_a_failing_endpoint_leaves_rotation_within_two_polls_and_returns():
    with (
        running_simulator(model="sim-model", startup_delay=60) as starting,
        running_simulator(model="sim-model") as started,
    ):
        try:
            endpoint = EndpointRoute(id=102, base_url=starting.url)
            verdicts = [
                (await poll_and_store([endpoint]))[0].healthy for _ in range(UNHEALTHY_AFTER)
            ]
            assert verdicts[-1] is False  # /health answers 503 while the engine starts
            # The same endpoint once its engine answers (no waiting for a real start-up).
            [back] = await poll_and_store([EndpointRoute(id=102, base_url=started.url)])
        finally:
            await vllm_client.close_session()
    assert back.healthy and back.failures == 0


async def test_an_unreachable_endpoint_counts_as_a_failed_poll():
    endpoint = EndpointRoute(id=103, base_url="http://127.0.0.1:9")
    try:
        first = (await poll_and_store([endpoint]))[0]
        second = (await poll_and_store([endpoint]))[0]
    finally:
        await vllm_client.close_session()
    assert first.failures == 1 and first.healthy
    assert second.failures == 2 and not second.healthy


async def test_an_engine_without_a_health_route_is_probed_at_its_own_health_path():
    # llama.cpp's server has no /health; the simulator stands in, probed at /v1/models.
    with running_simulator(model="sim-model") as sim:
        wrong = EndpointRoute(id=104, base_url=sim.url, health_path="/no-such-route")
        right = EndpointRoute(id=105, base_url=sim.url, health_path="/v1/models")
        try:
            assert await vllm_client.probe_health(sim.url, "", within=2, path="/v1/models")
            assert not await vllm_client.probe_health(sim.url, "", within=2, path="/no-such-route")
            [right_health] = await poll_and_store([right])
            [wrong_health] = await poll_and_store([wrong])
        finally:
            await vllm_client.close_session()
    assert right_health.failures == 0
    assert wrong_health.failures == 1
