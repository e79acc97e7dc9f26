"""The operations page: site admins see each model's instances, state, load, CAIPI's queue,
recent scaling decisions on a chart, and the log tail of a failed start."""

from __future__ import annotations

import asyncio
import time

import pytest
from django.utils import timezone

from deploy import demand
from deploy.health import EndpointHealth, health_write
from deploy.models import Instance, InstanceState, ScalingDecision
from deploy.services import endpoint_add
from tests.deploy.conftest import sim_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy_deployment(apply_spec):
    deployment = apply_spec(sim_spec())
    endpoint = endpoint_add(model=deployment.model, url="http://127.0.0.1:21555")
    Instance.objects.create(
        deployment=deployment,
        launcher="local",
        state=InstanceState.READY,
        url=endpoint.url,
        endpoint=endpoint,
        gpus=[0, 1],
    )
    health_write([EndpointHealth(endpoint_id=endpoint.pk, running=3, waiting=2, kv_usage=0.42)])
    Instance.objects.create(
        deployment=deployment,
        launcher="local",
        state=InstanceState.FAILED,
        stopped_at=timezone.now(),
        error="not healthy after 30 s; last lines of its log:\nCUDA out of memory\n",
    )
    ScalingDecision.objects.create(
        deployment=deployment, current=0, desired=1, reason="4 calls waiting and no instance"
    )
    ScalingDecision.objects.create(
        deployment=deployment, current=1, desired=2, reason="engine queue ≥ 4 per instance"
    )
    asyncio.run(
        demand.demand_note_waiting(
            model_id=deployment.model_id, ticket="t1", until=time.time() + 60
        )
    )
    return deployment


def test_an_admin_sees_instances_load_queue_decisions_and_failed_start_logs(
    client, admin, busy_deployment
):
    client.force_login(admin)
    page = client.get("/deploy/ops/").content.decode()
    assert "<h2>sim-burst</h2>" in page
    assert 'data-state="ready"' in page and "http://127.0.0.1:21555" in page
    assert "<td>0, 1</td>" in page  # its GPUs
    assert "<td>3</td>" in page and "<td>2</td>" in page and "42 %" in page
    assert 'Calls waiting in CAIPI: <strong class="waiting">1</strong>' in page
    assert page.count('class="decision"') == 2
    assert 'data-reason="engine queue ≥ 4 per instance"' in page
    assert "0 → 1 — 4 calls waiting and no instance" in page
    assert "CUDA out of memory" in page


def test_a_model_scaled_to_zero_says_so(client, admin, apply_spec):
    apply_spec(sim_spec())
    client.force_login(admin)
    page = client.get("/deploy/ops/").content.decode()
    assert "No instance is running (scaled to zero)." in page
    assert "no scaling decision yet" in page


@pytest.mark.parametrize("persona", ["student", "lecturer", "outsider"])
def test_only_site_admins_may_open_the_operations_page(client, request, persona, busy_deployment):
    client.force_login(request.getfixturevalue(persona))
    response = client.get("/deploy/ops/")
    assert response.status_code == 403
    assert b"CUDA" not in response.content


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/deploy/ops/")
    assert response.status_code == 302
