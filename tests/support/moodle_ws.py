"""A small real HTTP fake of Moodle's web services, answering with responses recorded from
the Moodle 5.0.6 lab (``tests/fixtures/moodle/``; how they were recorded: its README).

It serves ``/webservice/rest/server.php`` (checking the token, answering each function with
its recording) and ``/webservice/pluginfile.php/...`` (the recorded files, with the token).
The recordings name the lab's address; the fake puts its own in their place. ``mode``
switches to the failures a real Moodle shows: ``"ws_off"`` (REST disabled: 403, empty),
``"html"`` (a web page, as when the address is not Moodle's wwwroot), ``"error"`` (500).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "moodle"
LAB_ROOT = "http://127.0.0.1:8080"


def recording(name: str) -> str:
    return (FIXTURES / name).read_text()


@dataclass
class FakeMoodle:
    """State of the fake: its token, what was asked, and the failure mode."""

    base_url: str = ""
    token: str = ""
    mode: str = ""
    calls: list[dict[str, str]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    gone: set[str] = field(default_factory=set)  # file paths deleted since the listing

    def __post_init__(self) -> None:
        self.token = json.loads(recording("lab.json"))["token"]

    def answer(self, name: str) -> str:
        return recording(name).replace(LAB_ROOT, self.base_url)


class _Handler(BaseHTTPRequestHandler):
    moodle: FakeMoodle

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: str | bytes, content_type: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _failure(self) -> bool:
        mode = self.moodle.mode
        if mode == "ws_off":
            self._send(403, b"", "text/html")
        elif mode == "html":
            self._send(200, self.moodle.answer("login_page.html"), "text/html; charset=utf-8")
        elif mode == "error":
            self._send(500, b"<h1>Internal Server Error</h1>", "text/html")
        return bool(mode)

    def do_POST(self) -> None:
        if self._failure():
            return
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        self.moodle.calls.append(form)
        if urlsplit(self.path).path != "/webservice/rest/server.php":
            self._send(404, self.moodle.answer("login_page.html"), "text/html")
            return
        if form.get("wstoken") != self.moodle.token:
            self._send(200, self.moodle.answer("error_invalidtoken.json"), "application/json")
            return
        name = f"{form.get('wsfunction')}.json"
        if not (FIXTURES / name).is_file():
            self._send(200, self.moodle.answer("error_accessexception.json"), "application/json")
            return
        self._send(200, self.moodle.answer(name), "application/json; charset=utf-8")

    def do_GET(self) -> None:
        if self._failure():
            return
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        prefix = "/webservice/pluginfile.php/"
        if not parts.path.startswith(prefix):
            self._send(200, self.moodle.answer("login_page.html"), "text/html")
            return
        if query.get("token") != self.moodle.token:
            self._send(200, self.moodle.answer("error_invalidtoken.json"), "application/json")
            return
        self.moodle.downloads.append(parts.path)
        files = json.loads(recording("files.json"))
        relative = parts.path.removeprefix(prefix)
        if relative in self.moodle.gone or relative not in files:
            self._send(404, self.moodle.answer("error_filenotfound.json"), "application/json")
            return
        body = (FIXTURES / "files" / files[relative]["fixture"]).read_bytes()
        self._send(200, body, files[relative]["mimetype"])


@contextmanager
def running_moodle() -> Iterator[FakeMoodle]:
    """A FakeMoodle served on a free loopback port for the duration of the block."""
    moodle = FakeMoodle()
    handler = type("Handler", (_Handler,), {"moodle": moodle})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    moodle.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield moodle
    finally:
        server.shutdown()
        server.server_close()
