"""What the core's pages link to: the sections and top-bar links the apps registered."""

from __future__ import annotations

import pytest

from caipi.core import navigation
from caipi.core.permissions import COURSE_VIEW

pytestmark = pytest.mark.django_db


def _titles(shown: list[navigation.Shown]) -> list[str]:
    return [item.title for item in shown]


def test_a_course_page_lists_the_apps_sections_in_their_order_for_a_lecturer(lecturer, course):
    titles = _titles(navigation.course_sections(user=lecturer, course=course))
    assert titles == [
        "Prompt templates",
        "Course assistant",
        "Lecture notes",
        "Course usage",
        "LMS link and roster",
    ]


def test_a_student_sees_only_the_sections_their_role_may_open(student, course):
    shown = navigation.course_sections(user=student, course=course)
    assert _titles(shown) == ["Course assistant"]
    assert shown[0].url == f"/courses/{course.pk}/assistant/"


def test_a_registered_section_appears_without_touching_the_core(student, course):
    navigation.register_course_section(
        navigation.CourseSection(
            key="test-notes",
            title="Lecture notes",
            description="",
            action=COURSE_VIEW,
            url=lambda c: f"/notes/{c.pk}/",
            order=15,
        )
    )
    try:
        shown = navigation.course_sections(user=student, course=course)
        assert _titles(shown) == ["Course assistant", "Lecture notes"]
    finally:
        del navigation._SECTIONS["test-notes"]


def test_the_top_bar_shows_site_usage_to_admins_only(client, student, admin):
    assert _titles(navigation.top_links(user=student)) == ["API keys"]
    assert _titles(navigation.top_links(user=admin)) == ["API keys", "Usage", "Operations"]
    client.force_login(admin)
    page = client.get("/").content.decode()
    assert 'href="/keys/"' in page and 'href="/usage/"' in page


def test_anonymous_visitors_get_no_top_bar_links(client, db):
    from django.contrib.auth.models import AnonymousUser

    assert navigation.top_links(user=AnonymousUser()) == []
    assert 'href="/keys/"' not in client.get("/").content.decode()
