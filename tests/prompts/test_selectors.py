from __future__ import annotations

import pytest

from caipi.core.errors import NotFound, PermissionDenied
from prompts import selectors, services
from prompts.models import Audience
from tests.prompts.conftest import content

pytestmark = pytest.mark.django_db


def test_a_student_cannot_open_a_draft(template, student):
    with pytest.raises(NotFound):
        selectors.template_for_run(user=student, template_id=template.pk)


def test_a_student_cannot_open_another_courses_template(published, outsider):
    with pytest.raises(PermissionDenied):
        selectors.template_for_run(user=outsider, template_id=published.pk)


def test_a_student_runs_the_published_pin_not_the_newest_version(published, student, lecturer):
    services.version_save(actor=lecturer, template=published, content=content(), note="draft")
    _template, version = selectors.template_for_run(user=student, template_id=published.pk)
    assert version.number == 1


def test_staff_only_templates_are_hidden_from_students(published, student, lecturer):
    services.template_update(
        actor=lecturer, template=published, name=published.name, description="",
        audience=Audience.STAFF,
    )  # fmt: skip
    with pytest.raises(NotFound):
        selectors.template_for_run(user=student, template_id=published.pk)
    assert selectors.template_for_run(user=lecturer, template_id=published.pk)


def test_students_list_only_published_templates(course, template, published, student, lecturer):
    draft = services.template_create(actor=lecturer, course=course, name="Draft", content=content())
    assert list(selectors.template_list_for_course(user=student, course=course)) == [published]
    staff_view = selectors.template_list_for_course(user=lecturer, course=course)
    assert set(staff_view) == {published, draft}


def test_the_editor_is_for_course_staff_only(template, student, outsider):
    for user in (student, outsider):
        with pytest.raises(PermissionDenied):
            selectors.template_for_staff(user=user, template_id=template.pk)
