"""Log redaction: keys never reach a log, and no handler is broken by the redaction.

Uvicorn's access formatter unpacks a record's five arguments itself; a redaction that
replaced them (``record.args = None``) made every access line that mentioned ``caipi-``
(a dev-platform launch's ``client_id=caipi-dev-client``) print "--- Logging error ---".
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import pytest
from django.conf import settings
from django.db import connection
from uvicorn.logging import AccessFormatter

from tests.lms_connectors.conftest import form_fields

KEY = "caipi-abcd1234-" + "S3cr3t" * 7


def _record(msg: str, args: tuple | dict) -> logging.LogRecord:
    return logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, msg, args, None
    )


def test_an_access_record_keeps_its_five_arguments_with_the_key_redacted():
    record = _record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", f"/x?k={KEY}", "1.1", 200))

    assert isinstance(record.args, tuple) and len(record.args) == 5
    line = AccessFormatter(fmt="%(request_line)s %(status_code)s").format(record)
    assert "S3cr3t" not in line and "caipi-abcd1234-[redacted]" in line and "200 OK" in line


def test_numbers_keep_their_type_and_mappings_their_keys():
    record = _record("%(who)s used %(n)d tokens", {"who": f"Bearer {KEY}", "n": 42})

    assert record.getMessage() == "Bearer caipi-abcd1234-[redacted] used 42 tokens"
    assert record.args == {"who": "Bearer caipi-abcd1234-[redacted]", "n": 42}


def test_a_key_split_between_message_and_argument_is_still_redacted():
    record = _record("key caipi-abcd1234-%s", ("S3cr3tS3cr3tS3cr3t",))

    assert "S3cr3t" not in record.getMessage() and record.args == ()


def test_a_message_without_anything_to_redact_is_left_alone():
    args = ("caipi-dev-client", 3)
    record = _record("client %s tried %d times", args)

    assert record.args == args and record.msg == "client %s tried %d times"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def uvicorn_with_its_own_logging(transactional_db, tmp_path) -> Iterator[tuple[str, Path]]:
    """``python -m uvicorn caipi.asgi:application`` as the demo runs it — uvicorn's own log
    config, access log on — on this test's database, its output in a file."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgresql://{database['USER']}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}",
        "CAIPI_DEV_PLATFORM": "true",
        "SITE_URL": url,
        "CAIPI_DATA_DIR": str(tmp_path),
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
    }
    log_path = tmp_path / "web.log"
    argv = [sys.executable, "-m", "uvicorn", "caipi.asgi:application", "--host", "127.0.0.1",
            "--port", str(port), "--no-use-colors"]  # fmt: skip
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=settings.BASE_DIR
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and server.poll() is None:
            try:
                httpx.get(f"{url}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert server.poll() is None, log_path.read_text()
        yield url, log_path
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.postgres
def test_an_lti_launch_through_uvicorns_access_log_prints_no_logging_error(
    uvicorn_with_its_own_logging,
):
    url, log_path = uvicorn_with_its_own_logging
    with httpx.Client(base_url=url, timeout=20) as http:
        login = http.get("/lti/dev/start/student/", follow_redirects=True)
        assert "lti1p3_new_window" in login.text
        parts = urlsplit(str(login.url))
        checked = http.get(f"{parts.path}?{parts.query}&{urlencode({'lti1p3_new_window': 1})}")
        auth = http.get(checked.headers["Location"])
        action, fields = form_fields(auth.text)
        landed = http.post(action, data=fields)
        assert landed.status_code == 302
        assert http.get(landed.headers["Location"]).status_code == 200
        http.get(f"/healthz?key={KEY}")
    time.sleep(0.3)  # uvicorn writes the last access line after the answer

    log = log_path.read_text()
    assert "--- Logging error ---" not in log
    assert "client_id=caipi-dev-client" in log  # the line that used to break
    assert "POST /lti/launch/ HTTP/1.1" in log
    assert "caipi-abcd1234-[redacted]" in log and "S3cr3t" not in log
