"""Queued jobs: submitted over the API (202 + Location), run through the router, polled."""

from __future__ import annotations

import pytest

from caipi.gateway.models import Job, JobStatus
from caipi.gateway.selectors import job_capacity
from caipi.governance.services.usage import usage_flush
from deploy.selectors import EndpointRoute, ModelRoute
from tests.gateway.conftest import add_model

QUESTION = {"messages": [{"role": "user", "content": "Define entropy."}], "max_tokens": 4}


@pytest.fixture
def tutor(transactional_db, shared_simulator):
    yield add_model("tutor", shared_simulator.url)
    usage_flush()  # before the test's users are flushed away


@pytest.fixture(autouse=True)
def _usage_flushed(transactional_db):
    yield
    usage_flush()


@pytest.fixture(autouse=True)
def _tasks_run_here(monkeypatch):
    """Run Celery tasks in the test even when REDIS_URL makes Redis the broker."""
    from caipi.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)


def submit(client, user, **body):
    client.force_login(user)
    return client.post("/api/jobs/", body, content_type="application/json")


def test_a_job_runs_every_request_and_reports_progress(
    client, student, course, tutor, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(
            client, student, model="tutor", requests=[QUESTION] * 5, course_id=course.pk
        )
    assert response.status_code == 202, response.content
    assert response["Location"] == f"/api/jobs/{response.json()['id']}/"
    status = client.get(response["Location"]).json()
    assert status["status"] == JobStatus.SUCCEEDED
    assert (status["done"], status["total"], status["failed"]) == (5, 5, 0)
    assert all(
        r["model"] == "tutor" and r["usage"]["completion_tokens"] == 4 for r in status["results"]
    )


def test_a_job_whose_model_has_no_endpoint_up_is_retried_then_failed(
    client, student, transactional_db, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr("caipi.gateway.tasks.RETRY_BASE_SECONDS", 0.0)
    add_model("tutor", "http://127.0.0.1:9")
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, student, model="tutor", requests=[QUESTION])
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.FAILED and job.done == 0
    assert "could not be served" in job.error


def test_bad_jobs_are_refused_before_anything_is_queued(client, student, tutor, outsider, course):
    assert submit(client, student, model="nope", requests=[QUESTION]).status_code == 404
    bad = submit(client, student, model="tutor", requests=[{"messages": []}])
    assert bad.status_code == 400
    assert submit(client, student, model="tutor", requests=[]).status_code == 400
    foreign = submit(client, outsider, model="tutor", requests=[QUESTION], course_id=course.pk)
    assert foreign.status_code == 403
    assert not Job.objects.exists()


def test_a_job_for_a_model_the_user_may_not_use_is_refused_at_submission(
    client, student, lecturer, course, tutor
):
    from caipi.governance.models import RoleModelAccess
    from caipi.governance.principal import principal_caches_clear

    RoleModelAccess.objects.create(role="learner", model_names=["writer"])
    principal_caches_clear()
    refused = submit(client, student, model="tutor", requests=[QUESTION], course_id=course.pk)
    assert refused.status_code == 403, refused.content
    assert "may not use the model 'tutor'" in refused.json()["error"]["message"]
    assert not Job.objects.exists()
    allowed = submit(client, lecturer, model="tutor", requests=[QUESTION], course_id=course.pk)
    assert allowed.status_code == 202, allowed.content
    principal_caches_clear()


def test_only_the_creator_sees_a_job(client, student, outsider, tutor):
    job = Job.objects.create(created_by=student, model="tutor", total=1, results=[None])
    client.force_login(outsider)
    assert client.get(f"/api/jobs/{job.pk}/").status_code == 404
    client.logout()
    assert client.get(f"/api/jobs/{job.pk}/").status_code in (401, 403)


def test_queued_work_only_takes_capacity_interactive_calls_leave(settings):
    settings.GATEWAY_JOB_SLOTS_PER_ENDPOINT = 4
    model = ModelRoute(
        name="m",
        served_name="m",
        endpoints=(
            EndpointRoute(id=1, base_url="http://a"),
            EndpointRoute(id=2, base_url="http://b"),
            EndpointRoute(id=3, base_url="http://c", state="draining"),
        ),
    )
    assert job_capacity(model, {}) == 8
    assert job_capacity(model, {1: 3, 2: 9}) == 1
    assert job_capacity(model, {1: 4, 2: 4}) == 0
