"""CAIPI's own deployment files, checked by the tools that will read them: the documented
spec examples applied with ``deploy apply``, the Kubernetes manifests against the schema,
the systemd units with ``systemd-analyze verify``, the Compose file's services (and with
``docker compose config`` where the plugin is installed)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from django.core.management import call_command

from deploy.launchers.kubernetes import KUBERNETES_VERSION
from deploy.models import Deployment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))


def test_every_example_in_the_deployment_guide_exists_and_is_tested():
    guide = (ROOT / "docs" / "deployment.md").read_text()
    named = set(re.findall(r"deploy/examples/([\w.-]+\.yaml)", guide))
    assert named == {path.name for path in EXAMPLES}


@pytest.mark.django_db
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_deploy_apply_accepts_the_documented_example(path):
    if "slurm" in path.name and shutil.which("sbatch") is None:
        pytest.skip("the Slurm example needs sbatch (apt-get install slurm-client)")
    out = io.StringIO()
    call_command("deploy", "apply", str(path), stdout=out)
    names = [m["name"] for m in yaml.safe_load(path.read_text())["models"]]
    assert sorted(Deployment.objects.values_list("model__name", flat=True)) == sorted(names)


def test_the_kubernetes_manifests_are_valid_against_the_schema():
    documents = list(yaml.safe_load_all((ROOT / "deploy" / "k8s" / "caipi.yaml").read_text()))
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "StatefulSet", "Service", "Job", "Role"} <= kinds
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    names = {d["metadata"]["name"] for d in documents if d["kind"] in ("Deployment", "StatefulSet")}
    assert names == {"caipi-web", "caipi-worker", "caipi-beat", "postgres", "redis", "chroma"}


def test_the_compose_file_runs_web_worker_beat_postgres_redis_and_chroma(tmp_path):
    compose = ROOT / "deploy" / "compose.yaml"
    services = yaml.safe_load(compose.read_text())["services"]
    assert {"web", "worker", "beat", "postgres", "redis", "chroma"} <= set(services)
    assert services["beat"]["command"][4:6] == ["caipi", "beat"]
    docker = shutil.which("docker")
    plugin = docker and subprocess.run([docker, "compose", "version"], capture_output=True)
    if not plugin or plugin.returncode != 0:
        pytest.skip("docker compose is not installed here: only the file's structure is checked")
    shutil.copy(ROOT / "deploy" / "caipi.env.example", compose.parent / "caipi.env")
    try:
        subprocess.run([docker, "compose", "-f", str(compose), "config", "-q"], check=True)
    finally:
        (compose.parent / "caipi.env").unlink()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_the_systemd_units_verify(tmp_path):
    # The units name /opt/caipi; verify them pointing at this checkout and its virtualenv.
    for unit in (ROOT / "deploy" / "systemd").glob("*.service"):
        text = unit.read_text().replace("/opt/caipi", str(ROOT))
        text = text.replace("/etc/caipi/caipi.env", str(ROOT / "deploy" / "caipi.env.example"))
        (tmp_path / unit.name).write_text(text)
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 3
    done = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
