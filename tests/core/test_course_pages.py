"""The course home page: members see it with the actions their role allows; others are refused."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_student_sees_the_assistant_but_not_the_lecturer_actions(client, student, course):
    client.force_login(student)
    response = client.get(f"/courses/{course.id}/")
    assert response.status_code == 200
    assert b"Course assistant" in response.content
    assert b"LMS link and roster" not in response.content


def test_a_lecturer_sees_the_roster_link(client, lecturer, course):
    client.force_login(lecturer)
    response = client.get(f"/courses/{course.id}/")
    assert b"LMS link and roster" in response.content


def test_a_student_of_another_course_is_refused(client, outsider, course):
    client.force_login(outsider)
    assert client.get(f"/courses/{course.id}/").status_code == 403


def test_an_anonymous_visitor_is_sent_to_sign_in(client, course):
    response = client.get(f"/courses/{course.id}/")
    assert response.status_code == 302
    assert response["Location"].startswith("/signin/?next=")


def test_an_unknown_course_is_not_found(client, admin):
    client.force_login(admin)
    assert client.get("/courses/999999/").status_code == 404
