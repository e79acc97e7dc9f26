from __future__ import annotations

import pytest
from django.utils import timezone

from caipi.core.errors import ApplicationError, PermissionDenied
from caipi.core.models import CourseRole, Membership
from prompts import registry, services
from prompts.models import (
    BatchItem,
    BatchStatus,
    LibraryState,
    PromptSettings,
    TemplateState,
    TemplateVersion,
    TestRunStatus,
)
from prompts.variables import TemplateInvalid
from tests.prompts.conftest import content

pytestmark = pytest.mark.django_db


def test_every_save_is_a_new_immutable_version_with_author_and_note(template, lecturer):
    second = services.version_save(
        actor=lecturer, template=template, content=content(user_prompt="Define {{ input.topic }}"),
        note="shorter",
    )  # fmt: skip
    assert [v.number for v in template.versions.all()] == [2, 1]
    assert (second.author, second.note) == (lecturer, "shorter")
    assert second.tests.get().name == "overfitting"
    second.user_prompt = "changed in place"
    with pytest.raises(ValueError, match="immutable"):
        second.save()
    assert TemplateVersion.objects.get(pk=second.pk).user_prompt == "Define {{ input.topic }}"


def test_saving_refuses_unknown_variables_and_says_where(template, lecturer):
    with pytest.raises(TemplateInvalid) as refused:
        services.version_save(
            actor=lecturer, template=template, content=content(user_prompt="x\n{{ input.topik }}")
        )
    problem = refused.value.problems[0]
    assert (problem.field, problem.line, problem.column) == ("user_prompt", 2, 1)
    assert template.versions.count() == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"params": {"temperature": 5}}, "params.temperature"),
        ({"params": {"logit_bias": {}}}, "params.logit_bias"),
        ({"model": ""}, "model"),
        ({"starters": ["x" * 300]}, "starters"),
        ({"tests": [{"name": "t", "inputs": {"topic": "x" * 200}}]}, "tests[0].inputs.topic"),
        (
            {"tests": [{"name": "t", "inputs": {"topic": "a"}, "checks": [{"kind": "?"}]}]},
            "tests[0].checks[0].kind",
        ),
    ],
)
def test_saving_refuses_wrong_settings_naming_the_field(template, lecturer, changes, field):
    with pytest.raises(TemplateInvalid) as refused:
        services.version_save(actor=lecturer, template=template, content=content(**changes))
    assert field in [p.field for p in refused.value.problems]


def test_a_model_the_catalogue_does_not_know_is_refused(template, lecturer, monkeypatch):
    # monkeypatch restores the gateway's catalogue afterwards: other tests rely on it.
    monkeypatch.setattr(registry, "_catalogue", lambda: {"other"})
    with pytest.raises(TemplateInvalid):
        services.version_save(actor=lecturer, template=template, content=content())


def test_a_student_cannot_create_or_edit_templates(course, student, template):
    with pytest.raises(PermissionDenied):
        services.template_create(actor=student, course=course, name="x", content=content())
    with pytest.raises(PermissionDenied):
        services.version_save(actor=student, template=template, content=content())


def test_publishing_moves_the_pin_and_rollback_moves_it_back(template, lecturer):
    first = template.versions.get()
    second = services.version_save(actor=lecturer, template=template, content=content())
    services.template_publish(actor=lecturer, template=template, version=second)
    assert (template.published_version, template.state) == (second, TemplateState.PUBLISHED)
    services.template_publish(actor=lecturer, template=template, version=first)
    template.refresh_from_db()
    assert template.published_version == first
    services.template_unpublish(actor=lecturer, template=template)
    template.refresh_from_db()
    assert (template.published_version, template.state) == (None, TemplateState.DRAFT)


def test_a_lecturer_cannot_publish_to_a_course_they_do_not_teach(template, outsider, other_course):
    Membership.objects.create(user=outsider, course=template.course, role=CourseRole.LEARNER)
    with pytest.raises(PermissionDenied):
        services.template_publish(
            actor=outsider, template=template, version=template.versions.get()
        )


def test_a_version_of_another_template_cannot_be_pinned(template, lecturer, course):
    other = services.template_create(actor=lecturer, course=course, name="o", content=content())
    with pytest.raises(services.PublishRefused):
        services.template_publish(actor=lecturer, template=template, version=other.versions.get())


def test_the_site_can_require_a_green_test_run_before_publishing(template, lecturer):
    PromptSettings.objects.create(pk=1, require_green_tests=True)
    version = template.versions.get()
    with pytest.raises(services.PublishRefused):
        services.template_publish(actor=lecturer, template=template, version=version)
    run = services.testrun_create(actor=lecturer, version=version)
    services.testresult_record(
        run=run, case=version.tests.get(), answer="x",
        checks=[{"kind": "length", "passed": True, "detail": ""}],
    )  # fmt: skip
    assert services.testrun_finish(run=run).status == TestRunStatus.PASSED
    services.template_publish(actor=lecturer, template=template, version=version)


def test_a_test_run_with_a_failed_check_is_red(template, lecturer):
    version = template.versions.get()
    run = services.testrun_create(actor=lecturer, version=version)
    assert services.testrun_claim(run_id=run.pk) and not services.testrun_claim(run_id=run.pk)
    services.testresult_record(
        run=run, case=version.tests.get(), answer="",
        checks=[{"kind": "length", "passed": False, "detail": "0 characters"}],
    )  # fmt: skip
    assert services.testrun_finish(run=run).status == TestRunStatus.FAILED


def test_test_runs_are_handed_to_the_registered_queue_after_commit(
    template, lecturer, django_capture_on_commit_callbacks
):
    queued: list[int] = []
    previous = registry.queue_of(registry.TEST_RUN)
    registry.register_queue(registry.TEST_RUN, queued.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = services.testrun_create(actor=lecturer, version=template.versions.get())
    finally:
        registry.register_queue(registry.TEST_RUN, previous)  # type: ignore[arg-type]
    assert queued == [run.pk]


def test_copy_to_another_course_needs_teaching_there(template, lecturer, other_course):
    with pytest.raises(PermissionDenied):
        services.template_copy(actor=lecturer, template=template, course=other_course)
    Membership.objects.create(user=lecturer, course=other_course, role=CourseRole.INSTRUCTOR)
    del lecturer._caipi_course_roles  # the roles are memoised per request; this is a new one
    copy = services.template_copy(actor=lecturer, template=template, course=other_course)
    assert (copy.course, copy.copied_from, copy.state) == (other_course, template, "draft")
    assert copy.versions.get().tests.count() == 1


def test_the_library_takes_proposals_that_an_admin_approves(template, lecturer, admin, course):
    entry = services.library_propose(actor=lecturer, template=template)
    assert (entry.course, entry.library_state) == (None, LibraryState.PROPOSED)
    with pytest.raises(PermissionDenied):
        services.library_decide(actor=lecturer, template=entry, approve=True)
    with pytest.raises(PermissionDenied):
        services.template_copy(actor=lecturer, template=entry, course=course)
    services.library_decide(actor=admin, template=entry, approve=True)
    copy = services.template_copy(actor=lecturer, template=entry, course=course)
    assert copy.copied_from == entry


def test_export_and_import_round_trip_every_version(template, lecturer, course):
    services.version_save(actor=lecturer, template=template, content=content(), note="second")
    data = services.template_export(actor=lecturer, template=template)
    imported = services.template_import(actor=lecturer, course=course, data=data)
    assert [v.note for v in imported.versions.order_by("number")] == ["Created", "second"]
    assert imported.state == TemplateState.DRAFT


def test_import_refuses_what_is_not_an_export(lecturer, course):
    with pytest.raises(ApplicationError):
        services.template_import(actor=lecturer, course=course, data={"versions": []})


def test_import_checks_every_version_like_a_save(lecturer, course, template):
    data = services.template_export(actor=lecturer, template=template)
    data["versions"][0]["content"]["user_prompt"] = "{{ ''.__class__ }}"
    with pytest.raises(TemplateInvalid):
        services.template_import(actor=lecturer, course=course, data=data)


def test_a_placement_copied_with_its_course_adopts_the_published_pin(published, other_course):
    copy = services.template_adopt(source=published, course=other_course)
    assert copy.is_published and copy.published_version.user_prompt == (
        published.published_version.user_prompt
    )
    assert services.template_adopt(source=published, course=other_course) == copy


def test_a_batch_over_csv_rows_refuses_bad_rows_by_number(published, lecturer):
    specs = services.specs_of(published.published_version)
    rows = services.batch_rows_from_csv("topic,level\ntrees,beginner\n,advanced\n", specs)
    with pytest.raises(TemplateInvalid) as refused:
        services.batch_create(
            actor=lecturer, template=published, version=published.published_version,
            source="csv", rows=rows,
        )  # fmt: skip
    assert refused.value.problems[0].field == "rows[2].inputs.topic"


def test_a_csv_naming_unknown_columns_is_refused(published):
    with pytest.raises(TemplateInvalid):
        specs = services.specs_of(published.versions.get())
        services.batch_rows_from_csv("topic,secret\nx,y\n", specs)


def test_batch_results_are_purged_after_their_retention(published, lecturer, settings):
    settings.PROMPTS_BATCH_RETENTION_HOURS = 0
    batch = services.batch_create(
        actor=lecturer, template=published, version=published.published_version,
        source="csv", rows=[{"topic": "trees"}],
    )  # fmt: skip
    assert services.batch_claim(batch_id=batch.pk)
    services.batch_item_record(item=batch.items.get(), answer="Trees are ...")
    services.batch_finish(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.status, batch.done) == (BatchStatus.SUCCEEDED, 1)
    assert batch.purge_after <= timezone.now()
    assert services.batches_purge_expired() == 1
    assert not BatchItem.objects.filter(batch=batch).exists()


def test_a_cancelled_batch_is_not_claimed(published, lecturer):
    batch = services.batch_create(
        actor=lecturer, template=published, version=published.published_version,
        source="csv", rows=[{"topic": "trees"}],
    )  # fmt: skip
    services.batch_cancel(actor=lecturer, batch=batch)
    assert not services.batch_claim(batch_id=batch.pk)
