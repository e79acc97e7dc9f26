"""``manage.py deploy apply FILE`` / ``deploy export``: YAML in, YAML out, nothing half-done."""

from __future__ import annotations

import io
import re

import pytest
import yaml
from django.core.management import CommandError, call_command

from deploy.models import Deployment, Model
from tests.deploy.conftest import sim_spec


def _write(tmp_path, name: str, document) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_apply_creates_the_model_and_its_deployment_and_export_gives_it_back(db, tmp_path):
    path = _write(tmp_path, "sim.yaml", {"models": [sim_spec(), sim_spec("sim-two")]})
    out = io.StringIO()
    call_command("deploy", "apply", path, stdout=out)
    assert "applied sim-burst: simulator via local, 0-2 instances" in out.getvalue()
    deployment = Deployment.objects.get(model__name="sim-burst")
    assert deployment.idle_seconds == 2 and deployment.max_instances == 2

    exported = io.StringIO()
    call_command("deploy", "export", stdout=exported)
    document = yaml.safe_load(exported.getvalue())
    assert [m["name"] for m in document["models"]] == ["sim-burst", "sim-two"]
    assert (
        document["models"][0]["deployment"]["engine_args"]
        == sim_spec()["deployment"]["engine_args"]
    )
    # The export applies again unchanged (a round trip).
    again = _write(tmp_path, "exported.yaml", document)
    call_command("deploy", "apply", again, stdout=io.StringIO())
    assert Deployment.objects.count() == 2


def test_apply_updates_an_existing_deployment(db, tmp_path):
    call_command("deploy", "apply", _write(tmp_path, "a.yaml", sim_spec()), stdout=io.StringIO())
    changed = _write(tmp_path, "b.yaml", sim_spec(max_instances=5))
    call_command("deploy", "apply", changed, stdout=io.StringIO())
    assert Deployment.objects.get().max_instances == 5


def test_a_bad_spec_names_file_model_and_field_and_changes_nothing(db, tmp_path):
    good = sim_spec("good")
    bad = sim_spec("bad", launcher="nomad")
    path = _write(tmp_path, "mixed.yaml", {"models": [good, bad]})
    with pytest.raises(CommandError) as caught:
        call_command("deploy", "apply", path, stdout=io.StringIO())
    assert str(caught.value) == (
        f"{path}: bad: deployment.launcher: unknown launcher 'nomad'; "
        "choose one of local, slurm, docker, kubernetes"
    )
    assert not Model.objects.exists()


def test_a_file_that_is_not_yaml_is_refused(db, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("models: [\n")
    with pytest.raises(CommandError, match="not valid YAML"):
        call_command("deploy", "apply", str(path))


def test_reconcile_measure_prints_the_cpu_per_deployment_per_tick(db, tmp_path):
    call_command("deploy", "apply", _write(tmp_path, "a.yaml", sim_spec()), stdout=io.StringIO())
    out = io.StringIO()
    call_command("deploy", "reconcile", "--measure", "3", stdout=out)
    assert re.fullmatch(
        r"1 deployments, 3 ticks: \d+\.\d\d ms CPU per deployment per tick "
        r"\(\d+\.\d ms wall per tick\)\n",
        out.getvalue(),
    )


def test_reconcile_measure_needs_a_deployment(db):
    with pytest.raises(CommandError, match="no deployment to reconcile"):
        call_command("deploy", "reconcile", "--measure", "3")
