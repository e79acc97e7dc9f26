"""/api/ accepts the personal keys of /v1 (``Authorization: Bearer``), for reading only.

Bob (learner in ML101) has a key; Erin (API user) too. A script reads its owner's usage and
quota with the key; it cannot create keys or change anything with it.
"""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from caipi.governance.apikeys import apikey_cache_clear
from caipi.governance.models import ApiKey, QuotaLimit
from caipi.governance.services import apikey_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_keys():
    apikey_cache_clear()
    yield
    apikey_cache_clear()


def _with_key(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_script_reads_its_own_usage_and_quota_with_a_key(admin, student, course):
    QuotaLimit.objects.create(
        scope="role", role="learner", metric="requests", window="minute", size=10
    )
    _, raw = apikey_create(user=student, actor=admin)

    usage = _with_key(raw).get("/api/usage/me")
    quota = _with_key(raw).get("/api/quota/me")

    assert usage.status_code == 200, usage.content
    assert quota.status_code == 200, quota.content
    labels = [limit["limit"] for limit in quota.json()["limits"]]
    assert any("learner" in label for label in labels)  # Bob's course role holds his key too


def test_a_key_cannot_create_keys_or_change_anything(admin, student, lecturer, course):
    _, raw = apikey_create(user=student, actor=admin)
    answer = _with_key(raw).post("/api/keys", {"name": "another"}, format="json")
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "key_reads_only"
    assert ApiKey.objects.filter(user=student).count() == 1

    _, alices = apikey_create(user=lecturer, actor=admin)
    settings_change = _with_key(alices).patch(
        f"/api/courses/{course.pk}/settings", {"keep_conversations": True}, format="json"
    )
    assert settings_change.status_code == 403


def test_a_revoked_or_made_up_key_is_refused_with_401(admin, student):
    key, raw = apikey_create(user=student, actor=admin)
    key.revoked_at = timezone.now()
    key.save()
    revoked = _with_key(raw).get("/api/usage/me")
    made_up = _with_key("caipi-abcdefgh-" + "x" * 40).get("/api/usage/me")
    assert revoked.status_code == 401 and revoked.json()["error"]["reason"] == "revoked"
    assert made_up.status_code == 401 and made_up.json()["error"]["reason"] == "invalid"


def test_a_key_does_not_open_another_users_course(admin, outsider, course):
    _, raw = apikey_create(user=outsider, actor=admin)
    answer = _with_key(raw).get(f"/api/quota/me?course={course.pk}")
    assert answer.status_code == 403
