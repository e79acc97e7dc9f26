"""The governance REST API: who may call what, and each refusal the issue promises."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from caipi.governance.models import AuditEntry, CourseSettings, PolicyVersion, QuotaLimit
from caipi.governance.services import policy_accept
from caipi.governance.services.usage import usage_flush, usage_record

pytestmark = pytest.mark.django_db

BUDGET = {"scope": "course", "metric": "tokens", "window": "day", "size": 5000}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _admin_ceiling(course, size=10_000) -> QuotaLimit:
    return QuotaLimit.objects.create(
        scope="course", course=course, metric="tokens", window="day", size=size
    )


def test_a_lecturer_sets_their_course_budget_within_the_ceiling(lecturer, course):
    _admin_ceiling(course)
    answer = _client(lecturer).put(f"/api/courses/{course.pk}/budget", BUDGET, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["size"] == 5000 and answer.json()["managed_by"] == "course"
    assert AuditEntry.objects.filter(action="quota.course_budget", actor=lecturer).exists()


def test_a_budget_above_the_admin_ceiling_is_refused(lecturer, course):
    _admin_ceiling(course, size=1000)
    answer = _client(lecturer).put(f"/api/courses/{course.pk}/budget", BUDGET, format="json")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "above_ceiling"
    assert answer.json()["error"]["ceiling"] == 1000
    assert not QuotaLimit.objects.filter(managed_by="course").exists()


def test_a_student_cannot_raise_their_own_quota(student, course):
    _admin_ceiling(course)
    for body in (BUDGET, {**BUDGET, "scope": "course_member", "size": 10**9}):
        answer = _client(student).put(f"/api/courses/{course.pk}/budget", body, format="json")
        assert answer.status_code == 403
    assert not QuotaLimit.objects.filter(managed_by="course").exists()


def test_a_lecturer_of_course_a_cannot_touch_course_b(lecturer, other_course):
    client = _client(lecturer)
    assert (
        client.put(f"/api/courses/{other_course.pk}/budget", BUDGET, format="json").status_code
        == 403
    )
    assert client.get(f"/api/courses/{other_course.pk}/budget").status_code == 403
    answer = client.patch(
        f"/api/courses/{other_course.pk}/settings", {"keep_conversations": True}, format="json"
    )
    assert answer.status_code == 403


def test_a_student_cannot_change_course_settings_or_see_course_limits(student, course):
    client = _client(student)
    answer = client.patch(
        f"/api/courses/{course.pk}/settings", {"keep_conversations": True}, format="json"
    )
    assert answer.status_code == 403
    assert client.get(f"/api/courses/{course.pk}/budget").status_code == 403


def test_a_lecturer_cannot_exempt_their_students_from_the_admins_course_budget(lecturer, course):
    _admin_ceiling(course, size=500)
    body = {"exempt_roles": ["learner", "teaching_assistant", "instructor"]}
    answer = _client(lecturer).patch(f"/api/courses/{course.pk}/settings", body, format="json")
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "admin_setting" and error["fields"] == ["exempt_roles"]
    assert "exempt_roles" in error["message"]
    assert not CourseSettings.objects.filter(course=course).exists()


def test_a_lecturer_mixing_own_and_admin_fields_changes_nothing(lecturer, course):
    body = {"keep_conversations": True, "exempt_roles": ["learner"]}
    answer = _client(lecturer).patch(f"/api/courses/{course.pk}/settings", body, format="json")
    assert answer.status_code == 403 and answer.json()["error"]["fields"] == ["exempt_roles"]
    assert not CourseSettings.objects.filter(course=course, keep_conversations=True).exists()


def test_an_admin_sets_a_courses_exempt_roles(admin, course):
    body = {"exempt_roles": ["instructor"]}
    answer = _client(admin).patch(f"/api/courses/{course.pk}/settings", body, format="json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["exempt_roles"] == ["instructor"]
    assert CourseSettings.objects.get(course=course).exempt_roles == ["instructor"]


def test_the_settings_say_which_fields_the_caller_may_change(lecturer, admin, course):
    mine = _client(lecturer).get(f"/api/courses/{course.pk}/settings").json()
    assert mine["editable"] == ["keep_conversations", "retention_days"]
    assert mine["exempt_roles"] == ["instructor", "teaching_assistant"]
    theirs = _client(admin).get(f"/api/courses/{course.pk}/settings").json()
    assert theirs["editable"] == ["keep_conversations", "retention_days", "exempt_roles"]


def test_a_student_cannot_read_the_course_settings(student, course):
    assert _client(student).get(f"/api/courses/{course.pk}/settings").status_code == 403


def test_a_lecturer_turns_on_history_with_a_retention(lecturer, course):
    body = {"keep_conversations": True, "retention_days": 14}
    answer = _client(lecturer).patch(f"/api/courses/{course.pk}/settings", body, format="json")
    assert answer.status_code == 200 and answer.json()["retention_days"] == 14


def test_quota_me_lists_every_applicable_limit_with_what_remains(student, course):
    QuotaLimit.objects.create(scope="user", metric="requests", window="minute", size=10)
    _admin_ceiling(course, size=1000)
    answer = _client(student).get(f"/api/quota/me?course={course.pk}")
    assert answer.status_code == 200
    limits = {row["limit"]: row for row in answer.json()["limits"]}
    assert limits["user requests per minute"]["remaining"] == 10
    assert limits["course ML101 tokens per day"]["size"] == 1000


def test_quota_me_in_another_course_is_refused(student, other_course):
    assert _client(student).get(f"/api/quota/me?course={other_course.pk}").status_code == 403


def test_usage_me_shows_only_the_callers_own_usage(student, outsider, course):
    usage_record(
        user_id=student.pk, course_id=course.pk, model="m", prompt_tokens=5, completion_tokens=7
    )
    usage_record(user_id=outsider.pk, model="m", prompt_tokens=100, completion_tokens=100)
    usage_flush()
    body = _client(student).get("/api/usage/me").json()
    assert (body["calls"], body["prompt_tokens"], body["completion_tokens"]) == (1, 5, 7)


def test_users_manage_their_own_keys_through_the_api(settings, student):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["member"]
    client = _client(student)
    created = client.post("/api/keys", {"name": "laptop", "models": ["small"]}, format="json")
    assert created.status_code == 201 and created.json()["key"].startswith("caipi-")
    listed = client.get("/api/keys").json()["keys"]
    assert [key["name"] for key in listed] == ["laptop"] and "key" not in listed[0]
    revoked = client.post(f"/api/keys/{created.json()['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]


def test_nobody_revokes_anothers_key_through_the_api(settings, student, outsider):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["member"]
    key_id = _client(student).post("/api/keys", {}, format="json").json()["id"]
    assert _client(outsider).post(f"/api/keys/{key_id}/revoke").status_code == 404


def test_a_student_may_not_create_keys_by_default(student):
    answer = _client(student).post("/api/keys", {}, format="json")
    assert answer.status_code == 403


def test_session_apis_ask_for_the_policy_first(student, admin):
    PolicyVersion.objects.create(version=1, text="Be kind.", published_by=admin)
    answer = _client(student).get("/api/usage/me")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "policy_not_accepted"
    assert _client(student).post("/api/policy").json()["accepted"] is True
    assert _client(student).get("/api/usage/me").status_code == 200


def test_a_new_policy_version_asks_again(student, admin):
    PolicyVersion.objects.create(version=1, text="v1", published_by=admin)
    policy_accept(user=student)
    PolicyVersion.objects.create(version=2, text="v2", published_by=admin)
    assert _client(student).get("/api/usage/me").status_code == 403


def test_anonymous_callers_get_nothing(course):
    for url in ("/api/quota/me", "/api/usage/me", "/api/keys", f"/api/courses/{course.pk}/budget"):
        assert APIClient().get(url).status_code in (401, 403)
