"""The demo serves at once on the simulator while the real model is built in the
background, then the reconciler switches the model to the real engine without a gap; a
build that fails, or a model that still cannot run, leaves the simulator serving."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from django.conf import settings as django_settings

from caipi.demo import model as demo_model
from deploy import engines
from deploy.launchers.local import free_port
from deploy.models import InstanceState
from deploy.reconciler import reconcile
from tests.deploy.conftest import live

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_leftover_instances"),
]

REAL = demo_model.simulator_fields(options=["--ttft", "0.001", "--output-tokens", "2"])


@pytest.fixture(autouse=True)
def _demo_settings(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    settings.GATEWAY_ROUTING_MAX_AGE = 1.0
    settings.DEPLOY_RESTART_BACKOFF = 0.2


@pytest.fixture
def no_leftover_instances():
    yield
    from deploy.models import Deployment

    for deployment in Deployment.objects.all():
        demo_model.stop_instances(deployment)


RUNNABLE = engines.Availability(True)


def _builder(deployment, command, *, ready=RUNNABLE, said=None):
    return demo_model.BackgroundBuild(
        command=command,
        log_path=django_settings.DATA_DIR / "build.log",
        deployment=deployment,
        real=REAL,
        ready_check=lambda: ready,
        say=(said if said is not None else []).append,
    )


def _tick_until(deployment, done, timeout=40.0):
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, list(deployment.instances.values("id", "state"))
        reconcile(deployment_id=deployment.pk)
        time.sleep(0.2)


def test_the_model_switches_to_the_built_engine_and_the_simulator_retires_without_a_gap():
    deployment = demo_model.demo_deploy(name="smol", fields=demo_model.simulator_fields())
    _tick_until(deployment, lambda: demo_model.ready_instance(deployment) is not None)
    (simulator,) = live(deployment, "ready")
    demo_model.set_notice("The real model is being built, about 10 minutes")
    build = _builder(deployment, [sys.executable, "-c", "import time; time.sleep(1)"])
    build.start()
    gaps = []

    def switched() -> bool:
        if not live(deployment, "ready") and not live(deployment, "draining"):
            gaps.append(time.monotonic())
        return build.outcome == "switched" and demo_model.swap_finished(deployment)

    _tick_until(deployment, switched)
    simulator.refresh_from_db()
    assert simulator.state == InstanceState.STOPPED
    (real,) = live(deployment, "ready")
    with open(real.handle["log"]) as log:
        assert "--output-tokens 2" in log.readline()
    assert gaps == []
    assert demo_model.read_notice() == (
        "The real model is starting; the simulator answers until it is ready."
    )
    assert (django_settings.DATA_DIR / demo_model.BUILD_SECONDS_FILE).read_text() == "1"


def test_a_failed_build_leaves_the_simulator_serving_and_says_why():
    deployment = demo_model.demo_deploy(name="smol", fields=demo_model.simulator_fields())
    said: list[str] = []
    demo_model.set_notice("building")
    build = _builder(deployment, [sys.executable, "-c", "raise SystemExit(2)"], said=said)
    build.run()
    assert build.outcome.startswith("the real model could not be built (exit 2)")
    assert said == [f"NOTE: {build.outcome} — the simulator keeps serving"]
    assert demo_model.read_notice() is None
    deployment.refresh_from_db()
    assert deployment.engine == "simulator"


def test_a_build_after_which_the_model_still_cannot_run_keeps_the_simulator():
    deployment = demo_model.demo_deploy(name="smol", fields=demo_model.simulator_fields())
    missing = engines.Availability(False, "llama-cpp-python is not installed")
    build = _builder(deployment, [sys.executable, "-c", "pass"], ready=missing)
    build.run()
    assert build.outcome == "built, but the real model cannot run here: " + missing.reason
    deployment.refresh_from_db()
    assert deployment.engine == "simulator"


@pytest.mark.skipif(
    engines.LlamaCppEngine().availability().ok, reason="the real model is already built here"
)
def test_manage_py_demo_serves_at_once_with_a_notice_while_the_model_builds(tmp_path):
    port = free_port()
    env = {**os.environ, "CAIPI_DATA_DIR": str(tmp_path), "CAIPI_NO_BOOTSTRAP": "1"}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    started = time.monotonic()
    argv = [sys.executable, "manage.py", "demo", "--port", str(port)]
    argv += ["--model-build-command", "sleep 20"]
    process = subprocess.Popen(
        argv,
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    url_seen = threading.Event()
    build_done = threading.Event()

    def read() -> None:
        for line in process.stdout or ():
            lines.append(line)
            if re.search(r"CAIPI is running: open (\S+)", line):
                url_seen.set()
            if "the real model cannot run here" in line:
                build_done.set()
        url_seen.set()
        build_done.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert url_seen.wait(120), "".join(lines[-40:])
        clickable = time.monotonic() - started
        output = "".join(lines)
        assert "CAIPI is running" in output, output[-3000:]
        assert "The real model is being built, about 10 minutes" in output
        home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "The real model is being built, about 10 minutes" in home
        assert clickable < 120
        assert build_done.wait(60), "".join(lines[-40:])
        home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
        assert "being built" not in home
        print(f"demo clickable after {clickable:.1f} s")
    finally:
        process.terminate()
        process.wait(timeout=60)
