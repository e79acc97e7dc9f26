"""The pages' language: the one the user chose with the switch (remembered on the user),
else the LMS launch's locale, else the browser's."""

import pytest
from django.test import Client

from caipi.core.models import User

pytestmark = pytest.mark.django_db


def _page(client, path="/"):
    return client.get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()


def test_a_user_launched_from_a_german_lms_gets_german_pages(client, student, course):
    User.objects.filter(pk=student.pk).update(locale="de-DE")
    client.force_login(student)
    page = _page(client, f"/courses/{course.pk}/")
    assert '<html lang="de">' in page and "Abmelden" in page


def test_a_locale_caipi_does_not_speak_falls_back_to_the_browser(client, student):
    User.objects.filter(pk=student.pk).update(locale="fr-FR")
    client.force_login(student)
    assert '<html lang="en">' in _page(client)


def test_signed_in_users_see_the_language_switch(client, student):
    assert 'id="language-choice"' not in _page(client)
    client.force_login(student)
    assert 'id="language-choice"' in _page(client)


def test_the_chosen_language_wins_over_the_lms_and_is_remembered(client, student, course):
    User.objects.filter(pk=student.pk).update(locale="de-DE")
    client.force_login(student)
    answer = client.post("/language/", {"language": "en", "next": f"/courses/{course.pk}/"})
    assert answer.status_code == 302 and answer["Location"] == f"/courses/{course.pk}/"
    assert User.objects.get(pk=student.pk).language == "en"
    elsewhere = Client()  # another device, another launch: no cookie, the LMS says German
    elsewhere.force_login(User.objects.get(pk=student.pk))
    page = _page(elsewhere, f"/courses/{course.pk}/")
    assert '<html lang="en">' in page and "Sign out" in page


def test_a_language_caipi_does_not_speak_is_not_remembered(client, student):
    client.force_login(student)
    client.post("/language/", {"language": "xx", "next": "/"})
    assert User.objects.get(pk=student.pk).language == ""


def test_the_switch_does_not_send_anyone_to_another_site(client, student):
    client.force_login(student)
    answer = client.post("/language/", {"language": "de", "next": "https://evil.example/"})
    assert "evil.example" not in answer.get("Location", "")


def test_the_switch_needs_the_csrf_token(student):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(student)
    assert strict.post("/language/", {"language": "de", "next": "/"}).status_code == 403
    assert User.objects.get(pk=student.pk).language == ""
