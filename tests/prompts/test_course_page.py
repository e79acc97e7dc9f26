"""Published templates appear as cards on the course page (the core's course-page registry)."""

from __future__ import annotations

import pytest
from django.test import Client

from caipi.core import navigation
from prompts import services

pytestmark = pytest.mark.django_db


def test_students_see_a_card_per_published_template(published, template, student, course):
    shown = navigation.course_sections(user=student, course=course)
    assert [s.title for s in shown] == ["Explain a concept", "Course assistant"]
    assert shown[0].url == f"/prompts/{published.pk}/"


def test_drafts_have_no_card(template, student, course, lecturer):
    services.template_unpublish(actor=lecturer, template=template)
    assert [s.title for s in navigation.course_sections(user=student, course=course)] == [
        "Course assistant"
    ]


def test_staff_get_the_management_section_instead_of_cards(published, lecturer, course):
    titles = [s.title for s in navigation.course_sections(user=lecturer, course=course)]
    assert titles[0] == "Prompt templates" and "Explain a concept" not in titles


def test_the_course_home_page_shows_the_cards(published, student, course):
    client = Client()
    client.force_login(student)
    page = client.get(f"/courses/{course.pk}/").content.decode()
    assert f'href="/prompts/{published.pk}/"' in page and "Explain a concept" in page


def test_an_outsider_gets_no_cards_of_another_course(published, outsider, course):
    assert navigation.course_sections(user=outsider, course=course) == []
