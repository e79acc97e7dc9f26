"""The deployment API and admin (site admins only, specs validated naming the field) and
Prometheus service discovery of the engine instances (its own bearer token)."""

from __future__ import annotations

import pytest

from caipi.governance.models import AuditEntry
from deploy.models import Deployment, Instance, InstanceState
from tests.deploy.conftest import sim_spec

pytestmark = pytest.mark.django_db


def test_an_admin_applies_a_spec_and_reads_it_back(client, admin):
    client.force_login(admin)
    response = client.post(
        "/api/deploy/deployments/", sim_spec(max_instances=3), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["deployment"]["max_instances"] == 3
    assert AuditEntry.objects.filter(action="deployment.create", actor=admin).exists()
    listed = client.get("/api/deploy/deployments/").json()
    assert [d["name"] for d in listed] == ["sim-burst"]
    assert listed[0]["instances"] == [] and listed[0]["decisions"] == []


def test_a_bad_spec_is_refused_naming_the_field(client, admin):
    client.force_login(admin)
    response = client.post(
        "/api/deploy/deployments/",
        sim_spec(launcher="nomad"),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "deployment.launcher": [
            "unknown launcher 'nomad'; choose one of local, slurm, docker, kubernetes"
        ]
    }
    assert not Deployment.objects.exists()


def test_an_admin_changes_a_deployment_with_put(client, admin, apply_spec):
    apply_spec(sim_spec())
    client.force_login(admin)
    response = client.put(
        "/api/deploy/deployments/sim-burst/",
        sim_spec(min_instances=1),
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert Deployment.objects.get().min_instances == 1


def test_a_deployment_with_running_instances_cannot_be_deleted(client, admin, apply_spec):
    deployment = apply_spec(sim_spec())
    Instance.objects.create(deployment=deployment, launcher="local", state=InstanceState.READY)
    client.force_login(admin)
    response = client.delete("/api/deploy/deployments/sim-burst/")
    assert response.status_code == 400
    Instance.objects.update(state=InstanceState.STOPPED)
    assert client.delete("/api/deploy/deployments/sim-burst/").status_code == 204


@pytest.mark.parametrize("persona", ["student", "lecturer", "outsider"])
def test_only_site_admins_may_see_or_apply_deployments(client, request, persona):
    client.force_login(request.getfixturevalue(persona))
    assert client.get("/api/deploy/deployments/").status_code == 403
    response = client.post("/api/deploy/deployments/", sim_spec(), content_type="application/json")
    assert response.status_code == 403
    assert not Deployment.objects.exists()


def test_the_admin_form_refuses_a_spec_naming_the_field(client, admin, apply_spec):
    deployment = apply_spec(sim_spec())
    client.force_login(admin)
    page = client.post(
        f"/admin/deploy/deployment/{deployment.pk}/change/",
        {
            "model": deployment.model_id,
            "enabled": "on",
            "engine": "simulator",
            "engine_args": "{}",
            "gpus_per_instance": 4,
            "launcher": "local",
            "target": '{"gpus": [0]}',
            "min_instances": 0,
            "max_instances": 1,
            "scaling": "{}",
            "idle_seconds": 60,
            "sleep_level": 0,
            "startup_timeout": 60,
            "warm_windows": "[]",
            "instances-TOTAL_FORMS": 0,
            "instances-INITIAL_FORMS": 0,
        },
    )
    assert page.status_code == 200
    assert "deployment.gpus_per_instance: asks for 4 GPUs per instance" in page.content.decode()
    assert Deployment.objects.get().gpus_per_instance == 0


def _live_instance(apply_spec) -> Instance:
    deployment = apply_spec(sim_spec())
    return Instance.objects.create(
        deployment=deployment, launcher="local", state="ready", url="http://10.0.0.7:8100"
    )


def test_prometheus_discovers_every_live_engine_instance(client, settings, apply_spec):
    settings.DEPLOY_PROMETHEUS_SD_TOKEN = "sd-token"
    instance = _live_instance(apply_spec)
    Instance.objects.create(deployment=instance.deployment, launcher="local", state="stopped")
    response = client.get("/api/deploy/sd", HTTP_AUTHORIZATION="Bearer sd-token")
    assert response.status_code == 200
    assert response.json() == [
        {
            "targets": ["10.0.0.7:8100"],
            "labels": {
                "__scheme__": "http",
                "__metrics_path__": "/metrics",
                "model": "sim-burst",
                "deployment": str(instance.deployment_id),
                "instance_id": str(instance.pk),
                "launcher": "local",
                "state": "ready",
            },
        }
    ]


def test_service_discovery_refuses_a_missing_or_wrong_token(client, settings, apply_spec):
    settings.DEPLOY_PROMETHEUS_SD_TOKEN = "sd-token"
    _live_instance(apply_spec)
    assert client.get("/api/deploy/sd").status_code == 401
    wrong = client.get("/api/deploy/sd", HTTP_AUTHORIZATION="Bearer guess")
    assert wrong.status_code == 401 and b"10.0.0.7" not in wrong.content


def test_service_discovery_is_off_without_a_token_configured(client, admin, settings):
    settings.DEPLOY_PROMETHEUS_SD_TOKEN = None
    client.force_login(admin)
    assert client.get("/api/deploy/sd").status_code == 404
