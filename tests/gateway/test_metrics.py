"""Gateway metrics on /metrics, and in-flight counts shared through Redis."""

from __future__ import annotations

import pytest

from caipi.gateway.inflight import InFlight, inflight_totals
from tests.gateway.conftest import add_model


async def test_calls_show_up_on_the_metrics_page(v1, chat_model, async_client):
    answer = await v1.post(
        "/v1/chat/completions",
        json={"model": "tutor", "messages": [{"role": "user", "content": "x"}], "max_tokens": 2},
    )
    assert answer.status_code == 200
    await v1.post("/v1/chat/completions", content=b"{oops")
    text = (await async_client.get("/metrics")).content.decode()
    assert 'caipi_gateway_requests_total{endpoint="' in text and 'model="tutor"' in text
    assert "caipi_gateway_tokens_total{endpoint=" in text
    assert "caipi_gateway_time_to_first_token_seconds_bucket" in text
    assert "caipi_gateway_overhead_seconds_count" in text
    assert 'caipi_gateway_refusals_total{status="400"}' in text
    assert "caipi_gateway_endpoint_up{endpoint=" in text
    assert "caipi_gateway_inflight{" in text
    assert "caipi_gateway_inflight_seen{" in text


@pytest.mark.redis
async def test_in_flight_counts_are_shared_between_processes(redis_url):
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    web1, web2 = InFlight(), InFlight()
    try:
        for _ in range(3):
            web1.acquire(7)
        web2.acquire(7)
        web2.acquire(8)
        await web1.sync(client)
        await web2.sync(client)
        await web1.sync(client)
        assert web1.total(7) == 4 and web1.total(8) == 1
        assert web2.total(7) == 4
        web1.release(7)
        await web1.sync(client)
        import redis as sync_redis

        totals = inflight_totals(sync_redis.Redis.from_url(redis_url))
        assert totals == {7: 3, 8: 1}
        await web2.forget(client)
        await web1.sync(client)
        assert web1.total(7) == 2 and web1.total(8) == 0
    finally:
        await client.aclose()


def test_models_added_elsewhere_reach_the_catalog(transactional_db, shared_simulator):
    from caipi.gateway.catalog import catalog
    from deploy.selectors import routing_version

    before = routing_version()
    add_model("tutor", shared_simulator.url)
    assert routing_version() > before
    assert catalog().models["tutor"].endpoints[0].base_url == shared_simulator.url
