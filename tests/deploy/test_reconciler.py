"""The reconciler with the local launcher and the real simulator: scale from zero on demand,
serve, scale back to zero; start-up failures with their log; crashes replaced after a
back-off; drain before stop; and two reconcilers at once never double-start."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from django.db import connection

from deploy import demand
from deploy.models import EndpointState, Instance, InstanceState, ScalingDecision
from deploy.reconciler import reconcile
from tests.deploy.conftest import live, sim_spec, tick_until

pytestmark = pytest.mark.usefixtures("no_leftover_instances")


def _burst(url: str, model: str, calls: int) -> list[int]:
    async def one(client: httpx.AsyncClient) -> int:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        response = await client.post(f"{url}/v1/chat/completions", json=body)
        return response.status_code

    async def all_of_them() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            return list(await asyncio.gather(*(one(client) for _ in range(calls))))

    return asyncio.run(all_of_them())


def _wait(model_id: int, ticket: str) -> None:
    asyncio.run(
        demand.demand_note_waiting(model_id=model_id, ticket=ticket, until=time.time() + 60)
    )


def test_a_model_at_zero_scales_up_for_waiting_calls_serves_them_and_scales_back_to_zero(
    apply_spec,
):
    deployment = apply_spec(sim_spec(engine_args={"options": ["--startup-delay", "0.5"]}))
    assert reconcile(deployment_id=deployment.pk).started == []  # nothing asked for yet

    tickets = [uuid.uuid4().hex for _ in range(20)]
    for ticket in tickets:
        _wait(deployment.model_id, ticket)
    reports = tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    assert sum(len(r.started) for r in reports) == 1
    (instance,) = live(deployment, "ready")
    assert instance.endpoint is not None and instance.endpoint.state == EndpointState.READY

    statuses = _burst(instance.url, "sim-burst", 200)
    for ticket in tickets:
        asyncio.run(demand.demand_done(model_id=deployment.model_id, ticket=ticket))
    assert statuses == [200] * 200

    tick_until(deployment, lambda: not live(deployment), timeout=30)
    instance.refresh_from_db()
    assert instance.state == InstanceState.STOPPED and instance.endpoint is None
    reasons = list(ScalingDecision.objects.order_by("at").values_list("reason", flat=True))
    assert reasons[0] == "20 calls waiting and no instance"
    assert reasons[-1] == "no call for 2 s (idle time)"
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{instance.url}/health", timeout=2)


def test_min_instances_are_kept_running_without_any_call(apply_spec):
    deployment = apply_spec(sim_spec(min_instances=1, idle_seconds=1))
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    time.sleep(1.5)
    report = reconcile(deployment_id=deployment.pk)
    assert report.draining == [] and report.stopped == []
    assert len(live(deployment, "ready")) == 1


def test_an_instance_that_is_not_healthy_in_time_fails_with_its_log_tail(apply_spec):
    deployment = apply_spec(
        sim_spec(
            min_instances=1,
            startup_timeout=1,
            engine_args={"options": ["--startup-delay", "30"]},
        )
    )
    tick_until(deployment, lambda: deployment.instances.filter(state="failed").exists(), timeout=20)
    failed = deployment.instances.get(state="failed")
    assert failed.error.startswith("not healthy after 1 s; last lines of its log:")
    assert "deploy.simulator" in failed.error  # the log's first line: the command it ran
    assert failed.endpoint is None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{failed.url}/health", timeout=2)


def test_a_crash_at_start_up_is_reported_and_retried_after_a_back_off(apply_spec):
    deployment = apply_spec(
        sim_spec(min_instances=1, engine_args={"options": ["--max-num-seqs", "0"]})
    )
    reports = tick_until(
        deployment, lambda: deployment.instances.filter(state="failed").count() >= 2, timeout=30
    )
    first = deployment.instances.filter(state="failed").order_by("id").first()
    assert first is not None
    assert first.error.startswith("the process exited during start-up; last lines of its log:")
    assert "max-num-seqs must be >= 1" in first.error
    deployment.refresh_from_db()
    assert deployment.start_failures >= 2 and deployment.next_start_at is not None
    # The back-off holds starts: far fewer starts than ticks.
    assert sum(len(r.started) for r in reports) < len(reports)


def test_an_instance_that_crashes_while_serving_is_replaced(apply_spec):
    deployment = apply_spec(
        sim_spec(min_instances=1, engine_args={"options": ["--die-after", "1"]})
    )
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    (first,) = live(deployment, "ready")
    _burst(first.url, "sim-burst", 1)
    tick_until(
        deployment,
        lambda: bool(live(deployment, "ready")) and live(deployment, "ready")[0].pk != first.pk,
        timeout=30,
    )
    first.refresh_from_db()
    assert first.state == InstanceState.FAILED and first.error.startswith("the process exited")


def test_a_surplus_instance_is_drained_before_it_is_stopped(apply_spec):
    deployment = apply_spec(sim_spec(min_instances=1, engine_args={"options": ["--ttft", "2"]}))
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    (instance,) = live(deployment, "ready")
    calls: list[list[int]] = []
    caller = threading.Thread(target=lambda: calls.append(_burst(instance.url, "sim-burst", 3)))
    caller.start()
    time.sleep(0.5)  # the calls are in flight (first token after 2 s)
    deployment.min_instances, deployment.idle_seconds = 0, 0  # no longer wanted
    deployment.save()
    report = reconcile(deployment_id=deployment.pk)
    assert report.draining == [instance.pk]
    instance.refresh_from_db()
    assert instance.endpoint is not None and instance.endpoint.state == EndpointState.DRAINING
    tick_until(deployment, lambda: not live(deployment), timeout=30)
    caller.join(timeout=30)
    assert calls == [[200, 200, 200]]  # in-flight calls finished before the stop


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_two_reconcilers_at_once_never_double_start(apply_spec, settings, redis_url):
    settings.REDIS_URL = redis_url
    deployment = apply_spec(sim_spec(min_instances=1, max_instances=4))
    barrier = threading.Barrier(4)
    reports = []

    def tick() -> None:
        barrier.wait()
        try:
            reports.append(reconcile(deployment_id=deployment.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=tick) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(len(r.started) for r in reports) == 1
    assert sum(1 for r in reports if r.skipped) >= 1
    assert Instance.objects.filter(deployment=deployment).count() == 1


def test_a_changed_spec_rolls_the_instance_over_without_a_gap(apply_spec):
    deployment = apply_spec(sim_spec(min_instances=1))
    tick_until(deployment, lambda: bool(live(deployment, "ready")), timeout=30)
    (old,) = live(deployment, "ready")
    options = ["--startup-delay", "1", "--output-tokens", "3"]
    deployment = apply_spec(sim_spec(min_instances=1, engine_args={"options": options}))
    gaps = []

    def rolled_over() -> bool:
        if not live(deployment, "ready") and not live(deployment, "draining"):
            gaps.append(time.monotonic())
        old.refresh_from_db()
        return old.state == InstanceState.STOPPED

    tick_until(deployment, rolled_over, timeout=30)
    (new,) = live(deployment, "ready")
    assert "--output-tokens 3" in Path(new.handle["log"]).read_text().splitlines()[0]
    assert gaps == []  # a ready instance all along
    assert reconcile(deployment_id=deployment.pk).started == []


def test_a_model_is_started_inside_a_course_calendar_warm_up_and_says_why(apply_spec, course):
    from django.utils import timezone

    from deploy.services import CourseWarmUp, calendar_windows_replace

    deployment = apply_spec(sim_spec())
    assert reconcile(deployment_id=deployment.pk).started == []  # no call, no window
    now = timezone.now()
    lecture = CourseWarmUp(
        deployment.model, now - dt.timedelta(minutes=5), now + dt.timedelta(hours=1), 3, "Lecture 3"
    )
    calendar_windows_replace(course=course, warm_ups=[lecture])

    assert len(reconcile(deployment_id=deployment.pk).started) == 1
    reason = ScalingDecision.objects.filter(deployment=deployment).values_list("reason", flat=True)
    assert list(reason) == ["calendar warm-up: Lecture 3 (Introduction to Machine Learning)"]
