"""Signing in with a password: lockout after repeated failures (django-axes), and the way back.

Erin (API user) signs in with a password at /login/; Dana (admin) also through the admin's
login page. Both pages are guarded by the same lockout.
"""

from __future__ import annotations

import pytest
from django.test import Client

from caipi.core.models import SiteRole, User

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def erin(db) -> User:
    return User.objects.create_user(
        username="erin", password="pw-erin", site_role=SiteRole.API_USER
    )


def _sign_in(client: Client, password: str, *, path: str = "/login/", who: str = "erin"):
    return client.post(path, {"username": who, "password": password})


def test_a_hundred_wrong_passwords_are_refused_after_the_limit(client, erin, settings):
    answers = [_sign_in(client, f"guess-{n}").status_code for n in range(100)]

    limit = settings.AXES_FAILURE_LIMIT
    assert answers[: limit - 1] == [200] * (limit - 1)  # the form again, with its error
    assert set(answers[limit - 1 :]) == {429}
    assert "_auth_user_id" not in client.session


def test_the_lockout_says_why_and_for_how_long(client, erin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        answer = _sign_in(client, f"guess-{n}")
    text = answer.content.decode()
    assert answer.status_code == 429
    assert "Too many failed sign-ins" in text
    assert f"{settings.AXES_FAILURE_LIMIT} times" in text and "15 minutes" in text


def test_even_the_right_password_is_refused_while_locked_out(client, erin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"guess-{n}")
    assert _sign_in(client, "pw-erin").status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_admin_login_is_locked_out_too(client, admin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        answer = _sign_in(client, f"guess-{n}", path="/admin/login/", who="dana")
    assert answer.status_code == 429
    assert _sign_in(client, "pw-dana", path="/admin/login/", who="dana").status_code == 429


def test_another_address_is_not_locked_out_by_someone_elses_guesses(client, erin, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, f"guess-{n}")
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    answer = elsewhere.post("/login/", {"username": "erin", "password": "pw-erin"})
    assert answer.status_code == 302


def test_signing_in_returns_to_the_page_that_asked_for_it(client, erin):
    asked = client.get("/keys/")
    assert asked.status_code == 302 and asked["Location"] == "/signin/?next=/keys/"
    assert "/login/?next=/keys/" in client.get(asked["Location"]).content.decode()

    form = client.get("/login/?next=/keys/")
    assert 'name="next" value="/keys/"' in form.content.decode()
    answer = client.post("/login/", {"username": "erin", "password": "pw-erin", "next": "/keys/"})
    assert answer.status_code == 302 and answer["Location"] == "/keys/"
    assert client.get("/keys/").status_code == 200


def test_a_next_pointing_off_site_is_ignored(client, erin):
    answer = client.post(
        "/login/",
        {"username": "erin", "password": "pw-erin", "next": "https://evil.example/steal"},
    )
    assert answer.status_code == 302 and answer["Location"] == "/"
