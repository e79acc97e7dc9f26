"""One error shape everywhere under /api/: ``{"error": {"message", "type", "code"}}``.

Whatever refuses — DRF (anonymous, permission, a 404 from ``get_object_or_404``), Django
(an unknown path, a CSRF refusal of a plain view) — an API client gets JSON, never a page.
"""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _error(answer) -> dict:
    assert answer["Content-Type"].startswith("application/json"), answer.content[:200]
    error = answer.json()["error"]
    assert {"message", "type", "code"} <= set(error)
    return error


def test_an_anonymous_caller_gets_401_with_how_to_authenticate(client):
    answer = client.get("/api/usage/me")
    assert answer.status_code == 401
    assert _error(answer)["type"] == "authentication_error"
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_course_is_a_404_in_the_same_shape(client, lecturer):
    client.force_login(lecturer)
    answer = client.get("/api/courses/999999/budget")
    assert answer.status_code == 404
    error = _error(answer)
    assert error["type"] == "not_found_error" and error["code"] == "not_found"


def test_a_refusal_is_a_403_in_the_same_shape(client, student, course):
    client.force_login(student)
    answer = client.get(f"/api/courses/{course.pk}/budget")
    assert answer.status_code == 403 and _error(answer)["type"] == "permission_error"


def test_an_unknown_api_path_is_a_json_404_not_a_page(client):
    answer = client.get("/api/no/such/thing")
    assert answer.status_code == 404 and _error(answer)["code"] == "not_found"


def test_a_csrf_refusal_under_api_is_json_and_says_why(student, course):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(student)
    answer = browser.post("/api/policy", {})
    assert answer.status_code == 403
    assert "CSRF" in _error(answer)["message"]


def test_a_plain_django_view_under_api_refusing_csrf_answers_json(student, course):
    from django.urls import resolve

    assert not hasattr(resolve("/api/chat/").func, "cls")  # a plain async view, not DRF
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(student)
    answer = browser.post("/api/chat/", "{}", content_type="application/json")
    assert answer.status_code == 403
    error = _error(answer)
    assert error["code"] == "csrf_failed" and "CSRF" in error["message"]


def test_a_wrong_method_is_a_json_405(client, student):
    client.force_login(student)
    answer = client.delete("/api/usage/me")
    assert answer.status_code == 405 and _error(answer)["type"] == "invalid_request_error"


def test_pages_outside_api_keep_their_html_error_pages(client):
    answer = client.get("/no/such/page/")
    assert answer.status_code == 404
    assert not answer["Content-Type"].startswith("application/json")
