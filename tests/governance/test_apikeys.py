"""API keys: the hashed lookup, each refusal, the cache, and revocation across processes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from caipi.core.errors import NotAuthenticated, PermissionDenied
from caipi.core.redis import sync_redis
from caipi.governance import snapshot
from caipi.governance.apikeys import aapikey_authenticate, apikey_authenticate, apikey_hash
from caipi.governance.models import ApiKey, AuditEntry
from caipi.governance.services import apikey_create, apikey_revoke

pytestmark = pytest.mark.django_db


def _reason(raw_key: str) -> str:
    with pytest.raises(NotAuthenticated) as caught:
        apikey_authenticate(raw_key)
    assert caught.value.status == 401
    return caught.value.extra["reason"]


def test_a_new_key_authenticates_as_its_owner(admin, student):
    key, raw = apikey_create(user=student, actor=admin, models=["small"])
    principal = apikey_authenticate(raw)
    assert raw.startswith(f"caipi-{key.prefix}-")
    assert (principal.user_id, principal.key_id, principal.username) == (student.pk, key.pk, "bob")
    assert principal.allowed_models == frozenset({"small"})
    assert principal.course_id is None


def test_only_a_keyed_hash_of_the_key_is_stored(admin, student):
    key, raw = apikey_create(user=student, actor=admin)
    assert key.key_hash == apikey_hash(raw)
    assert raw not in str(ApiKey.objects.values().get(pk=key.pk))


def test_missing_malformed_and_unknown_keys_are_refused_with_their_own_reason(db):
    assert _reason("") == "missing"
    assert _reason("sk-something") == "malformed"
    assert _reason("caipi-abcdefgh-" + "x" * 40) == "invalid"


def test_a_revoked_key_is_refused_at_once(admin, student):
    key, raw = apikey_create(user=student, actor=admin)
    apikey_authenticate(raw)  # now cached
    apikey_revoke(key=key, actor=student)
    assert _reason(raw) == "revoked"


def test_an_expired_key_is_refused(admin, student):
    key, raw = apikey_create(user=student, actor=admin, expires_days=1)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    snapshot.governance_changed()
    assert _reason(raw) == "expired"


def test_a_key_of_a_disabled_account_is_refused(admin, student):
    _, raw = apikey_create(user=student, actor=admin)
    student.is_active = False
    student.save()
    assert _reason(raw) == "disabled"


def test_a_warm_key_check_queries_nothing(admin, student, django_assert_num_queries):
    _, raw = apikey_create(user=student, actor=admin)
    apikey_authenticate(raw)
    with django_assert_num_queries(0):
        for _ in range(100):
            apikey_authenticate(raw)


def test_a_student_may_not_create_keys_unless_their_role_is_allowed(student, settings):
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["api_user"]
    with pytest.raises(PermissionDenied):
        apikey_create(user=student, actor=student)
    settings.GOVERNANCE_KEY_SELF_SERVICE_ROLES = ["api_user", "member"]
    assert apikey_create(user=student, actor=student)[0].user == student


def test_nobody_revokes_someone_elses_key(admin, student, outsider):
    key, _ = apikey_create(user=student, actor=admin)
    with pytest.raises(PermissionDenied):
        apikey_revoke(key=key, actor=outsider)


def test_creating_and_revoking_keys_is_audited_without_the_secret(admin, student):
    key, raw = apikey_create(user=student, actor=admin)
    apikey_revoke(key=key, actor=admin)
    entries = list(AuditEntry.objects.order_by("at").values_list("action", "before", "after"))
    assert [entry[0] for entry in entries] == ["apikey.create", "apikey.revoke"]
    assert raw not in str(entries) and key.key_hash not in str(entries)


@pytest.mark.redis
def test_a_revocation_elsewhere_is_honoured_within_the_poll_interval(
    on_redis, admin, student, monkeypatch
):
    now = [1000.0]
    monkeypatch.setattr(snapshot.VERSION, "clock", lambda: now[0])
    key, raw = apikey_create(user=student, actor=admin)
    apikey_authenticate(raw)
    # Another process revokes: the row changes and the shared counter moves, nothing local.
    ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    sync_redis().incr(snapshot.VERSION_KEY)
    apikey_authenticate(raw)  # still valid here: this process read the counter just now
    now[0] += snapshot.poll_seconds()
    assert _reason(raw) == "revoked"


@pytest.mark.django_db(transaction=True)
async def test_the_async_check_agrees_with_the_sync_one(db):
    from asgiref.sync import sync_to_async

    from caipi.core.models import User

    user = await User.objects.acreate(username="erin", site_role="api_user")
    _, raw = await sync_to_async(apikey_create)(user=user, actor=None)
    principal = await aapikey_authenticate(raw)
    assert principal.username == "erin"
    with pytest.raises(NotAuthenticated):
        await aapikey_authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B"))
