"""Waiting for a locally started process to answer: success, early exit, time-out."""

import subprocess
import sys

import pytest

from deploy.launchers.local import NotReady, free_port, wait_for_ok


def _python(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_process_that_serves_is_ready_once_it_answers_200():
    port = free_port()
    server = _python(f"import http.server as h; h.test(h.SimpleHTTPRequestHandler, port={port})")
    try:
        assert wait_for_ok(f"http://127.0.0.1:{port}/", server, timeout=20) >= 0
    finally:
        server.kill()
        server.wait()


def test_a_process_that_exits_first_is_reported_with_its_exit_code():
    process = _python("import sys; sys.exit(3)")
    process.wait()
    with pytest.raises(NotReady, match="exited with code 3"):
        wait_for_ok(f"http://127.0.0.1:{free_port()}/", process, timeout=5)


def test_a_process_that_never_answers_times_out_naming_the_last_probe():
    process = _python("import time; time.sleep(30)")
    try:
        with pytest.raises(NotReady, match=r"not healthy after 0.5 s \(last probe: \w*Connect"):
            wait_for_ok(f"http://127.0.0.1:{free_port()}/", process, timeout=0.5)
    finally:
        process.kill()
        process.wait()
