"""Two real CAIPI web processes, one PostgreSQL database, one Redis: they behave as one.

Processes A and B are ``uvicorn caipi.asgi:application`` subprocesses, as ``manage.py
serve`` runs them on one machine or on two. They share nothing in memory; what one learns
reaches the other through Redis and PostgreSQL within ``BOUND`` (the processes run with
CAIPI_SHARED_STATE_POLL_SECONDS=POLL, so the tests stay quick). Bob studies and calls the
API with his key; Dana is the site administrator.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest

from caipi.core.models import SiteRole, User
from caipi.governance.models import QuotaLimit
from deploy.models import Endpoint, Model
from tests.gateway.conftest import add_model, upstream_requests
from tests.support.caipi_servers import (
    CaipiProcess,
    api_key_of,
    chat,
    seconds_until,
    server_env,
    two_caipis,
)
from tests.support.simulator import SimulatorHandle

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

POLL = 0.2  # CAIPI_SHARED_STATE_POLL_SECONDS of A and B
BOUND = POLL + 0.8  # the poll, a Redis round trip, and a call's own time, with room
TICK_BOUND = 0.75  # breaker openings: published and read within a tick (0.25 s) each


@contextmanager
def _signed_in(server: CaipiProcess, username: str) -> Iterator[httpx.Client]:
    """A browser session on ``server``: the password sign-in, as a person would."""
    with httpx.Client(base_url=server.url, timeout=30) as browser:
        yield _sign_in(browser, username)


def _sign_in(browser: httpx.Client, username: str) -> httpx.Client:
    page = browser.get("/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    answer = browser.post(
        "/login/",
        data={"username": username, "password": "pw", "csrfmiddlewaretoken": token},
        headers={"Referer": f"{browser.base_url}login/"},
    )
    assert answer.status_code == 302, answer.text
    return browser


def _api_post(browser: httpx.Client, path: str) -> httpx.Response:
    return browser.post(
        path,
        headers={"X-CSRFToken": browser.cookies["csrftoken"], "Referer": str(browser.base_url)},
    )


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database (rows committed by the test), as a URL for the subprocesses."""
    from django.db import connection

    base = urlsplit(os.environ["DATABASE_URL"])
    return base._replace(path="/" + connection.settings_dict["NAME"]).geturl()


@pytest.fixture
def shared_env(database_url: str, redis_url: str, settings) -> dict[str, str]:
    # This process writes governance rows too: its change notices go to the shared Redis.
    settings.REDIS_URL = redis_url
    return server_env(
        database_url=database_url,
        redis_url=redis_url,
        extra={
            "SECRET_KEY": settings.SECRET_KEY,
            "CAIPI_SHARED_STATE_POLL_SECONDS": str(POLL),
            "CAIPI_CIRCUIT_FAILURES": "3",
            "CAIPI_CIRCUIT_COOLDOWN": "30",
        },
    )


@pytest.fixture
def bob(transactional_db) -> User:
    return User.objects.create_user(username="bob-two", password="pw", site_role="api_user")


@pytest.fixture
def tutor(transactional_db, shared_simulator: SimulatorHandle) -> Model:
    return add_model("tutor", shared_simulator.url)


@pytest.fixture
def a_and_b(shared_env, tutor) -> Iterator[tuple[CaipiProcess, CaipiProcess]]:
    with two_caipis(shared_env) as servers:
        yield servers


def test_a_key_revoked_through_a_is_refused_by_b_within_the_bound(a_and_b, bob):
    a, b = a_and_b
    raw, key = api_key_of(bob)
    assert chat(a, raw).status_code == 200
    assert chat(b, raw).status_code == 200  # B now holds the key in its cache

    with _signed_in(a, bob.username) as bob_on_a:
        revoked = _api_post(bob_on_a, f"/api/keys/{key.pk}/revoke")
    assert revoked.status_code == 200, revoked.text

    waited = seconds_until(lambda: chat(b, raw).status_code == 401, limit=BOUND)
    print(f"revocation reached B after {waited:.3f}s")
    refusal = chat(b, raw).json()["error"]
    assert refusal["reason"] == "revoked"


def test_a_lowered_quota_holds_on_both_processes_within_the_bound(a_and_b, bob):
    a, b = a_and_b
    raw, _ = api_key_of(bob)
    limit = QuotaLimit.objects.create(
        scope="user", user=bob, metric="requests", window="day", size=100
    )
    assert [chat(a, raw).status_code, chat(b, raw).status_code] == [200, 200]

    limit.size = 2  # the two calls above used it up
    limit.save()

    waited = seconds_until(
        lambda: chat(b, raw).status_code == 429 and chat(a, raw).status_code == 429,
        limit=BOUND,
    )
    print(f"lowered limit held on A and B after {waited:.3f}s")


def test_a_counter_shared_by_both_processes_never_goes_over_its_limit(a_and_b, bob):
    a, b = a_and_b
    raw, _ = api_key_of(bob)
    QuotaLimit.objects.create(scope="user", user=bob, metric="requests", window="day", size=7)

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda i: chat((a, b)[i % 2], raw), range(24)))

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 7 + [429] * 17


@pytest.fixture
def dana(transactional_db) -> User:
    """Dana runs the CAIPI site."""
    return User.objects.create_user(username="dana-two", password="pw", site_role=SiteRole.ADMIN)


def test_an_endpoint_drained_through_a_gets_no_call_from_b_within_the_bound(
    shared_env, two_simulators, bob, dana
):
    first, second = two_simulators
    add_model("tutor", first.url, second.url)
    drained = Endpoint.objects.get(url=first.url)
    raw, _ = api_key_of(bob)
    with two_caipis(shared_env) as (a, b):
        assert chat(b, raw).status_code == 200  # B has loaded both endpoints

        with _signed_in(a, dana.username) as dana_on_a:
            answer = _api_post(dana_on_a, f"/api/deploy/endpoints/{drained.pk}/drain/")
        assert answer.status_code == 200, answer.text
        time.sleep(BOUND)
        before = upstream_requests(first)
        assert all(chat(b, raw).status_code == 200 for _ in range(10))

        assert upstream_requests(first) == before


class _FailingEngine(BaseHTTPRequestHandler):
    """An engine that answers every call with 500 and counts the calls it got."""

    calls = 0

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(200)

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer(500)

    def _answer(self, status: int) -> None:
        body = b'{"error": {"message": "engine failure"}}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def failing_engine() -> Iterator[tuple[str, type[_FailingEngine]]]:
    handler = type("FailingEngine", (_FailingEngine,), {"calls": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


def test_a_breaker_opened_by_a_keeps_b_off_the_failing_endpoint(
    shared_env, shared_simulator, failing_engine, bob
):
    failing_url, failing = failing_engine
    add_model("tutor", shared_simulator.url, failing_url)
    raw, _ = api_key_of(bob)
    with two_caipis(shared_env) as (a, b):
        for _ in range(40):  # A fails over, and trips its breaker after three failures
            assert chat(a, raw).status_code == 200
            if failing.calls >= 3:
                break
        time.sleep(TICK_BOUND)
        tripped_by_a = failing.calls

        assert all(chat(b, raw).status_code == 200 for _ in range(12))
        assert failing.calls == tripped_by_a == 3
