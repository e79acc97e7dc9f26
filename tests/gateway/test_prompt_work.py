"""Test runs and batch runs of templates as queued work (tasks run eagerly here)."""

from __future__ import annotations

import pytest
from django.test import Client

from caipi.gateway.prompt_wiring import background_wait
from caipi.governance.services.usage import usage_flush
from prompts import services
from prompts.models import BatchItemStatus, BatchStatus, PromptSettings, TestRunStatus
from tests.gateway.conftest import add_model
from tests.prompts.conftest import content


@pytest.fixture(autouse=True)
def _flush_usage(transactional_db):
    yield
    background_wait()
    usage_flush()  # before the test's rows go


def finished(row):
    """The row once the work started without a broker (a thread) has ended."""
    background_wait()
    row.refresh_from_db()
    return row


@pytest.fixture
def template(transactional_db, shared_simulator, lecturer, course):
    add_model("tutor", shared_simulator.url)
    return services.template_create(actor=lecturer, course=course, name="T", content=content())


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_test_run_goes_through_the_model_and_reports_each_case(template, lecturer):
    version = template.versions.get()
    answer = client_for(lecturer).post(
        f"/api/prompts/templates/{template.pk}/test-runs/",
        {"version_id": version.pk},
        content_type="application/json",
    )
    assert answer.status_code == 202
    background_wait()
    progress = client_for(lecturer).get(answer["Location"]).json()
    assert progress["status"] == TestRunStatus.PASSED, progress
    assert (progress["done"], progress["total"]) == (1, 1)
    assert progress["results"][0]["answer"]


def test_a_failing_check_makes_the_run_red_and_blocks_publishing_when_required(template, lecturer):
    failing = content(
        tests=[
            {
                "name": "t",
                "inputs": {"topic": "a"},
                "checks": [{"kind": "contains", "value": "zebra-unicorn"}],
            }
        ]
    )
    version = services.version_save(actor=lecturer, template=template, content=failing)
    run = finished(services.testrun_create(actor=lecturer, version=version))
    assert run.status == TestRunStatus.FAILED
    PromptSettings.objects.update_or_create(pk=1, defaults={"require_green_tests": True})
    with pytest.raises(services.PublishRefused):
        services.template_publish(actor=lecturer, template=template, version=version)


def test_a_rubric_is_judged_by_the_admins_judge_model(template, lecturer):
    PromptSettings.objects.update_or_create(pk=1, defaults={"judge_model": "tutor"})
    rubric = content(
        tests=[
            {
                "name": "t",
                "inputs": {"topic": "a"},
                "checks": [{"kind": "rubric", "value": "Is polite"}],
            }
        ]
    )
    version = services.version_save(actor=lecturer, template=template, content=rubric)
    run = finished(services.testrun_create(actor=lecturer, version=version))
    result = run.results.get()
    # The simulator does not answer in the judge's JSON: the check fails, saying why.
    assert result.checks[0]["kind"] == "rubric" and "judge" in result.checks[0]["detail"]


def test_a_batch_over_the_roster_finishes_with_a_downloadable_result(template, lecturer, student):
    optional = content(
        variables=[{"name": "topic", "kind": "short_text", "default": "trees", "required": False}],
        user_prompt="{{ input.topic }}",
        tests=[],
    )
    version = services.version_save(actor=lecturer, template=template, content=optional)
    batch = finished(
        services.batch_create(actor=lecturer, template=template, version=version, source="roster")
    )
    assert (batch.status, batch.done, batch.failed) == (BatchStatus.SUCCEEDED, 1, 0)
    item = batch.items.get()
    assert item.status == BatchItemStatus.DONE and item.user == student and item.answer
    csv = client_for(lecturer).get(f"/api/prompts/batches/{batch.pk}/results.csv").content
    assert b"Bob Student" in csv


def test_a_batch_on_a_model_no_longer_served_fails_with_a_reason(template, lecturer):
    from deploy.models import Model

    batch_version = template.versions.get()
    Model.objects.filter(name="tutor").update(enabled=False)
    batch = services.batch_create(
        actor=lecturer,
        template=template,
        version=batch_version,
        source="csv",
        rows=[{"topic": "x"}],
    )
    batch = finished(batch)
    assert batch.status == BatchStatus.FAILED and "not served" in batch.error
