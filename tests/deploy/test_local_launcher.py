"""The local launcher: waiting for a process to answer (success, early exit, time-out);
GPUs and ports per instance; finding an instance again by pid from another process."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.launchers.base import LaunchError, Placed
from deploy.launchers.local import LAUNCHER, NotReady, free_port, wait_for_ok
from deploy.models import Instance
from deploy.specs import spec_parse
from tests.deploy.conftest import live, sim_spec, tick_until


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


# --- the reconciler's local launcher: GPUs, ports, finding instances again --------------


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_each_instance_gets_its_own_gpus_and_port(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    spec = spec_parse(sim_spec(gpus_per_instance=2, target={"gpus": [0, 1, 2, 3]}))
    first = LAUNCHER.plan(spec, instance_id=1, placed=Placed())
    handle = LAUNCHER.start(spec, first)
    try:
        second = LAUNCHER.plan(spec, instance_id=2, placed=LAUNCHER.held([handle]))
        assert first.gpus == (0, 1) and second.gpus == (2, 3)
        assert first.port != second.port
        assert _environ(handle["pid"])["CUDA_VISIBLE_DEVICES"] == "0,1"
        with pytest.raises(LaunchError, match=r"no free GPUs: an instance needs 2, free are \[\]"):
            LAUNCHER.plan(spec, instance_id=3, placed=Placed(gpus=frozenset({0, 1, 2, 3})))
    finally:
        LAUNCHER.stop(handle, grace=2)
    assert LAUNCHER.status(handle).state == "exited"


def test_a_port_taken_by_another_program_is_skipped(settings):
    port = free_port()
    spec = spec_parse(sim_spec(target={"ports": [port, port + 1]}))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        plan = LAUNCHER.plan(spec, instance_id=1, placed=Placed())
    assert plan.port == port + 1


@pytest.mark.usefixtures("no_leftover_instances")
def test_an_exhausted_port_range_fails_the_start_with_a_clear_reason(apply_spec):
    port = free_port()
    deployment = apply_spec(sim_spec(min_instances=2, target={"ports": [port, port]}))
    tick_until(deployment, lambda: len(live(deployment, "ready")) == 1, timeout=30)
    failed = Instance.objects.filter(deployment=deployment, state="failed").first()
    assert failed is not None
    assert (
        failed.error
        == f"could not start: port range {port}-{port} is exhausted: every port is taken"
    )


def test_a_stopped_instance_is_not_confused_with_a_reused_pid():
    handle = {"pid": os.getpid(), "ticks": "1", "url": "http://127.0.0.1:1", "log": "/nonexistent"}
    assert LAUNCHER.status(handle).state == "exited"  # same pid, another start time
    assert LAUNCHER.logs(handle) == ""
