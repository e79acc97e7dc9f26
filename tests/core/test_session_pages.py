"""Signing in and out: a student whose session ended is told to open CAIPI from the course
(not sent to the admin login); signing out asks first and only a POST signs out."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_student_whose_session_ended_is_told_to_open_caipi_from_the_course(client, course):
    answer = client.get(f"/courses/{course.id}/assistant/", follow=True)
    page = answer.content.decode()
    assert answer.redirect_chain[-1][0].startswith("/signin/?next=")
    assert "Your session has ended" in page
    assert "open the CAIPI activity or link again" in page
    assert "/login/?next=" in page


def test_the_sign_in_page_offers_staff_the_password_login_with_where_they_were_going(
    client, course
):
    page = client.get(f"/signin/?next=/courses/{course.id}/").content.decode()
    assert f"/login/?next=/courses/{course.id}/" in page


def test_the_sign_in_page_drops_a_next_address_on_another_site(client):
    page = client.get("/signin/?next=https://evil.example/").content.decode()
    assert "evil.example" not in page
    assert "Open CAIPI from your course" in page


def test_signed_in_users_see_a_sign_out_link(client, student):
    client.force_login(student)
    assert 'href="/signout/"' in client.get("/").content.decode()
    client.logout()
    assert 'href="/signout/"' not in client.get("/").content.decode()


def test_signing_out_asks_first_and_a_get_signs_no_one_out(client, student):
    client.force_login(student)
    page = client.get("/signout/")
    assert page.status_code == 200 and b'id="signout-confirm"' in page.content
    assert "_auth_user_id" in client.session


def test_signing_out_with_post_ends_the_session(client, student, course):
    client.force_login(student)
    answer = client.post("/signout/", follow=True)
    assert answer.redirect_chain == [("/signed-out/", 302)]
    assert b"You are signed out" in answer.content
    assert "_auth_user_id" not in client.session
    assert client.get(f"/courses/{course.id}/")["Location"].startswith("/signin/")


def test_signing_out_refuses_a_post_without_the_csrf_token(student):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(student)
    assert strict.post("/signout/").status_code == 403
    assert "_auth_user_id" in strict.session
