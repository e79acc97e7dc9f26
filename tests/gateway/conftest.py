"""Gateway fixtures: models on real simulators, an API key, and clients of the ASGI app.

The /v1 app reads models and keys from other threads (the routing reload, the cold key
check), so these tests use ``transactional_db``: rows are committed and visible to them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from django.db import connections

from caipi.core.models import User
from caipi.gateway import background, lms_sources
from caipi.gateway.catalog import catalog, reset_catalog
from caipi.governance.apikeys import apikey_cache_clear, apikey_generate, apikey_hash
from caipi.governance.models import ApiKey
from caipi.governance.services.usage import usage_flush
from deploy import services, vllm_client
from deploy.models import Endpoint, Model
from lms_connectors.keys import secret_encrypt
from lms_connectors.models import LtiContext, Platform
from lms_connectors.services import platform_register_manual
from tests.support.moodle_ws import FakeMoodle, running_moodle
from tests.support.simulator import SimulatorHandle, running_simulator


def upstream_requests(sim: SimulatorHandle) -> float:
    """How many requests the simulator has finished or is working on (from its /metrics)."""
    with urllib.request.urlopen(f"{sim.url}/metrics", timeout=2) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("vllm:request_success_total", "vllm:num_requests_")):
            total += float(line.rsplit(" ", 1)[1])
    return total


def add_model(name: str, *urls: str, served_name: str = "sim-model", kind: str = "chat") -> Model:
    """A model with one endpoint per URL, installed in this process's catalog."""
    model = services.model_create(name=name, served_name=served_name, kind=kind)
    for url in urls:
        services.endpoint_add(model=model, url=url)
    catalog().reload()
    return model


@pytest.fixture(autouse=True)
def _fresh_gateway() -> Iterator[None]:
    reset_catalog()
    apikey_cache_clear()
    yield
    reset_catalog()


@pytest.fixture
async def _gateway_loop_cleanup(transactional_db) -> AsyncIterator[None]:
    yield
    await background.stop()
    await vllm_client.close_session()
    await asyncio.to_thread(_flush_usage)  # before the test's rows are flushed away


def _flush_usage() -> None:
    """Write the queued usage, then close this pool thread's database connection (left
    open, it would outlive the test and keep the test database from being dropped)."""
    try:
        usage_flush()
    finally:
        connections.close_all()


@pytest.fixture
def api_user(transactional_db) -> User:
    """Erin uses the API from her own scripts."""
    return User.objects.create_user(username="erin", password="pw-erin", site_role="api_user")


@pytest.fixture
def api_key(api_user: User) -> str:
    raw, prefix = apikey_generate()
    ApiKey.objects.create(user=api_user, prefix=prefix, key_hash=apikey_hash(raw), name="tests")
    return raw


@pytest.fixture(scope="session")
def shared_simulator() -> Iterator[SimulatorHandle]:
    """One simulator for the tests that only need a working engine (saves a start-up each)."""
    with running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as handle:
        yield handle


@pytest.fixture
def chat_model(transactional_db, shared_simulator: SimulatorHandle) -> Model:
    """'tutor' (served as 'sim-model') on the shared simulator."""
    return add_model("tutor", shared_simulator.url)


@pytest.fixture
def sent_upstream(shared_simulator: SimulatorHandle):  # type: ignore[no-untyped-def]
    """A function giving how many requests reached the shared simulator since the test began."""
    before = upstream_requests(shared_simulator)
    return lambda: upstream_requests(shared_simulator) - before


@pytest.fixture
def two_simulators() -> Iterator[tuple[SimulatorHandle, SimulatorHandle]]:
    with (
        running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as first,
        running_simulator(model="sim-model", ttft=0.01, tpot=0.001) as second,
    ):
        yield first, second


@pytest.fixture
async def v1(_gateway_loop_cleanup, api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of caipi.asgi.application, authenticated with Erin's key."""
    from caipi.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=30,
    ) as http:
        yield http


def endpoint_ids(model: Model) -> list[int]:
    return list(Endpoint.objects.filter(model=model).values_list("id", flat=True))


@dataclass
class LiveGateway:
    """caipi.asgi.application served by uvicorn in a thread, on a free loopback port."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread


@pytest.fixture
def live_gateway(transactional_db) -> Iterator[LiveGateway]:
    from caipi.asgi import application

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-gateway", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    yield LiveGateway(f"http://127.0.0.1:{port}", server, thread)
    server.should_exit = True
    thread.join(timeout=10)
    usage_flush()


@pytest.fixture
def moodle() -> Iterator[FakeMoodle]:
    with running_moodle() as fake:
        yield fake


@pytest.fixture
def linked(db, course, moodle) -> Platform:
    """ML101 is Moodle course 2 of a registered LMS with a web service token."""
    platform = platform_register_manual(
        issuer=moodle.base_url,
        client_id="c1",
        auth_login_url=moodle.base_url + "/mod/lti/auth.php",
        auth_token_url=moodle.base_url + "/mod/lti/token.php",
        key_set_url=moodle.base_url + "/mod/lti/certs.php",
        deployment_ids=["1"],
    )
    platform.ws_token_encrypted = secret_encrypt(moodle.token)
    platform.save()
    LtiContext.objects.create(
        platform=platform, issuer=platform.issuer, context_id="2", course=course
    )
    lms_sources.connect()  # other tests may have replaced the registered source
    return platform


@pytest.fixture
def output_budget(api_user: User, redis_url: str, settings):  # type: ignore[no-untyped-def]
    """Erin's completion tokens counted in the real test Redis (a limit far away): a function
    giving how many she has been charged."""
    import redis

    from caipi.core.redis import reset_clients
    from caipi.governance.limits import LIMITS
    from caipi.governance.models import QuotaLimit

    settings.REDIS_URL = redis_url
    reset_clients()
    LIMITS.clear()
    limit = QuotaLimit.objects.create(
        scope="user", user=api_user, metric="output_tokens", window="day", size=1_000_000
    )
    counters = redis.Redis.from_url(redis_url)

    def charged() -> int:
        return sum(int(counters.get(k) or 0) for k in counters.keys(f"caipi:q:{limit.pk}:*"))

    yield charged
    LIMITS.clear()
    reset_clients()
