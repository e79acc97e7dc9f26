"""Warm-ups from the Moodle course calendar, read through the web services client from the
fake answering with the lab's recordings: ML101 (Moodle course 2) has "Assignment 1 is
due" on 2026-09-21 at 16:00 UTC, so the models ML101 uses are kept awake from 15:30 to
16:00 — stored per course, refreshed by a Celery task, shown on the operations page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caipi.gateway import calendar_warmups
from caipi.gateway.tasks import refresh_calendar_warmups
from caipi.governance.models import RoleModelAccess, UsageRecord
from deploy.models import CalendarWarmWindow
from deploy.services import deployment_apply, model_create
from deploy.specs import spec_parse
from lms_connectors.moodle import MoodleError
from prompts import services as prompt_services
from tests.deploy.conftest import sim_spec
from tests.prompts.conftest import content

pytestmark = pytest.mark.django_db

BEFORE_THE_DEADLINE = datetime(2026, 9, 21, 15, 0, tzinfo=UTC)
DUE = datetime(2026, 9, 21, 16, 0, tzinfo=UTC)


def deployed(name: str):  # type: ignore[no-untyped-def]
    return deployment_apply(spec=spec_parse(sim_spec(name))).model


@pytest.fixture
def ml101_models(course, lecturer):  # type: ignore[no-untyped-def]
    """ML101 runs a published template on 'tutor' and its members called 'coder' lately;
    'history-bot' is deployed but ML101 never uses it; 'hand-made' has no deployment."""
    tutor, coder = deployed("tutor"), deployed("coder")
    deployed("history-bot")
    model_create(name="hand-made", served_name="hand-made")
    template = prompt_services.template_create(
        actor=lecturer, course=course, name="Explain", content={**content(), "model": "tutor"}
    )
    prompt_services.template_publish(
        actor=lecturer, template=template, version=template.versions.get()
    )
    UsageRecord.objects.create(user=lecturer, course=course, model="coder")
    UsageRecord.objects.create(user=lecturer, course=course, model="hand-made")
    return tutor, coder


def windows() -> list[tuple[str, str, datetime, datetime, str]]:
    rows = CalendarWarmWindow.objects.select_related("course", "model").order_by("model__name")
    return [(w.model.name, w.course.label, w.starts_at, w.ends_at, w.event_name) for w in rows]


def test_the_models_a_course_uses_are_warm_from_30_minutes_before_a_due_date_until_it(
    course, linked, moodle, ml101_models
):
    stored = calendar_warmups.calendar_warmups_refresh(course=course, now=BEFORE_THE_DEADLINE)

    assert stored == 2
    half_an_hour_before = datetime(2026, 9, 21, 15, 30, tzinfo=UTC)
    assert windows() == [
        ("coder", "ML101", half_an_hour_before, DUE, "Assignment 1 is due"),
        ("tutor", "ML101", half_an_hour_before, DUE, "Assignment 1 is due"),
    ]
    (asked,) = [c for c in moodle.calls if c["wsfunction"] == "core_calendar_get_calendar_events"]
    assert asked["events[courseids][0]"] == "2"


def test_the_assistants_models_count_when_the_admin_limited_learners_to_them(
    course, linked, ml101_models
):
    deployed("assistant-model")
    RoleModelAccess.objects.create(role="learner", model_names=["assistant-model"])

    calendar_warmups.calendar_warmups_refresh(course=course, now=BEFORE_THE_DEADLINE)

    assert [w[0] for w in windows()] == ["assistant-model", "coder", "tutor"]


def test_an_event_that_is_over_gives_no_window_and_replaces_the_old_ones(
    course, linked, ml101_models
):
    calendar_warmups.calendar_warmups_refresh(course=course, now=BEFORE_THE_DEADLINE)
    after_the_deadline = datetime(2026, 9, 21, 16, 1, tzinfo=UTC)

    assert calendar_warmups.calendar_warmups_refresh(course=course, now=after_the_deadline) == 0
    assert windows() == []


def test_a_course_not_linked_to_moodle_is_refused_with_a_reason(course, ml101_models):
    with pytest.raises(MoodleError) as caught:
        calendar_warmups.calendar_warmups_refresh(course=course, now=BEFORE_THE_DEADLINE)
    assert caught.value.code == "moodle_no_course"


def test_the_periodic_task_keeps_a_courses_windows_when_its_moodle_fails(
    course, linked, moodle, ml101_models
):
    calendar_warmups.calendar_warmups_refresh(course=course, now=BEFORE_THE_DEADLINE)
    moodle.mode = "error"

    report = calendar_warmups.calendar_warmups_refresh_all(now=BEFORE_THE_DEADLINE)

    assert report.failed == (course.title,) and report.windows == 0
    assert len(windows()) == 2  # the last good calendar still counts


def test_the_periodic_task_reads_every_linked_course(course, linked, ml101_models):
    # The recorded due date lies before today: a refresh "now" stores no window for it,
    # and reached Moodle without failing.
    assert refresh_calendar_warmups() == 0
    report = calendar_warmups.calendar_warmups_refresh_all(now=BEFORE_THE_DEADLINE)
    assert report.courses == 1 and report.windows == 2 and report.failed == ()


def test_an_admin_sees_upcoming_warm_ups_on_the_operations_page(
    client, admin, course, ml101_models
):
    from django.utils import timezone

    from deploy.services import CourseWarmUp, calendar_windows_replace

    tutor, _ = ml101_models
    soon = timezone.now() + timedelta(hours=1)
    calendar_windows_replace(
        course=course,
        warm_ups=[CourseWarmUp(tutor, soon, soon + timedelta(hours=2), 7, "Lecture 3", "course")],
    )
    client.force_login(admin)
    page = client.get("/deploy/ops/").content.decode()
    assert "Upcoming warm-ups from course calendars" in page
    assert "Lecture 3, course Introduction to Machine Learning" in page
