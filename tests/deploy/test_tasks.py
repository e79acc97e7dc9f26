"""The scheduled health poll, run as Celery beat runs it: by the task name in the schedule."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from celery import current_app
from django.conf import settings

from deploy import services
from deploy.health import UNHEALTHY_AFTER, health_read

pytestmark = pytest.mark.django_db


class _LlamaCppLike(BaseHTTPRequestHandler):
    """Answers 200 only on /openapi.json, as llama.cpp's server has no /health."""

    def do_GET(self) -> None:
        status = 200 if self.path == "/openapi.json" else 404
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def llama_cpp_like() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LlamaCppLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run_the_scheduled_poll() -> int:
    """What beat does: send the task named in the schedule; a worker (which imports every
    app's tasks at start-up) runs it."""
    current_app.loader.import_default_modules()
    entry = settings.CELERY_BEAT_SCHEDULE["deploy-poll-endpoints"]
    return current_app.tasks[entry["task"]].apply().get()


def test_the_scheduled_poll_keeps_an_endpoint_with_its_own_health_path_healthy(llama_cpp_like):
    model = services.model_create(name="smol")
    endpoint = services.endpoint_add(model=model, url=llama_cpp_like, health_path="/openapi.json")
    for _ in range(UNHEALTHY_AFTER + 1):
        assert _run_the_scheduled_poll() == 1
    assert health_read([endpoint.id])[endpoint.id].healthy


def test_the_scheduled_poll_takes_an_endpoint_out_when_its_health_path_fails(llama_cpp_like):
    model = services.model_create(name="smol")
    endpoint = services.endpoint_add(model=model, url=llama_cpp_like)  # /health: 404 here
    for _ in range(UNHEALTHY_AFTER):
        _run_the_scheduled_poll()
    assert not health_read([endpoint.id])[endpoint.id].healthy
