"""Sleep mode under the reconciler: idle instances of an engine with sleep mode sleep
instead of stopping, and the reconciler follows the gateway's wake."""

from __future__ import annotations

import httpx
import pytest

from deploy import services
from deploy.models import EndpointState, InstanceState, ScalingDecision
from deploy.reconciler import reconcile
from tests.deploy.conftest import live, sim_spec, tick_until

pytestmark = pytest.mark.usefixtures("no_leftover_instances")


def test_an_idle_instance_sleeps_instead_of_stopping_and_is_ready_again_once_woken(
    apply_spec,
):
    deployment = apply_spec(sim_spec(min_instances=0, sleep_level=1, idle_seconds=1))
    deployment.min_instances = 1  # started once, then left idle
    deployment.save()
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    (instance,) = live(deployment, "ready")
    tick_until(deployment, lambda: bool(live(deployment, "sleeping")), timeout=30)
    instance.refresh_from_db()
    assert instance.endpoint is not None
    assert instance.endpoint.state == EndpointState.SLEEPING
    asleep = httpx.get(f"{instance.url}/is_sleeping", timeout=5).json()
    assert asleep == {"is_sleeping": True}
    assert ScalingDecision.objects.filter(reason="no call for 1 s: asleep (level 1)").exists()

    services.endpoint_wake(endpoint=instance.endpoint)  # what the gateway does on a call
    report = reconcile(deployment_id=deployment.pk)
    instance.refresh_from_db()
    assert instance.state == InstanceState.READY
    assert report.started == [] and report.draining == []  # woken, not replaced


def test_a_sleeping_instance_is_not_stopped_by_the_idle_rule(apply_spec):
    deployment = apply_spec(sim_spec(min_instances=1, sleep_level=2, idle_seconds=1))
    tick_until(deployment, lambda: bool(live(deployment, "sleeping")), timeout=40)
    for _ in range(3):
        report = reconcile(deployment_id=deployment.pk)
        assert report.draining == [] and report.stopped == []
    assert len(live(deployment, "sleeping")) == 1
