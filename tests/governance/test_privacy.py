"""Privacy by default: retention, data export and deletion, audit, keys kept out of logs."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from caipi.core.models import User
from caipi.governance.models import (
    ApiKey,
    AuditEntry,
    Conversation,
    CourseSettings,
    Message,
    UsageRecord,
)
from caipi.governance.services import apikey_create
from caipi.governance.services.usage import usage_flush, usage_record
from caipi.governance.tasks import conversations_purge_expired

pytestmark = pytest.mark.django_db


def _conversation(user, course, age_days: int) -> Conversation:
    conversation = Conversation.objects.create(user=user, course=course)
    Message.objects.create(conversation=conversation, role="user", content="What is a gradient?")
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timedelta(days=age_days)
    )
    return conversation


def test_courses_keep_no_conversations_by_default(course):
    assert CourseSettings.objects.create(course=course).keep_conversations is False


def test_the_periodic_task_deletes_conversations_past_retention(
    student, course, outsider, other_course
):
    CourseSettings.objects.create(course=course, keep_conversations=True, retention_days=30)
    fresh, stale = _conversation(student, course, 2), _conversation(student, course, 31)
    not_kept = _conversation(outsider, other_course, 0)  # its course keeps nothing
    assert conversations_purge_expired() == 2
    assert list(Conversation.objects.all()) == [fresh]
    assert not Conversation.objects.filter(pk__in=[stale.pk, not_kept.pk]).exists()


def test_userdata_export_holds_everything_about_the_user(capsys, admin, student, course):
    apikey_create(user=student, actor=admin, name="laptop")
    usage_record(
        user_id=student.pk, course_id=course.pk, model="m", prompt_tokens=3, completion_tokens=4
    )
    usage_flush()
    _conversation(student, course, 0)
    call_command("userdata", "export", "bob")
    data = json.loads(capsys.readouterr().out)
    assert data["account"]["username"] == "bob"
    assert data["memberships"][0]["role"] == "learner"
    assert data["api_keys"][0]["name"] == "laptop" and "key_hash" not in data["api_keys"][0]
    assert data["usage"][0]["prompt_tokens"] == 3
    assert data["conversations"][0]["messages"][0]["content"] == "What is a gradient?"


def test_userdata_delete_removes_the_person_but_keeps_anonymous_accounting(admin, student, course):
    apikey_create(user=student, actor=admin)
    usage_record(
        user_id=student.pk, course_id=course.pk, model="m", prompt_tokens=3, completion_tokens=4
    )
    usage_flush()
    _conversation(student, course, 0)
    call_command("userdata", "delete", "bob", "--yes")
    assert not User.objects.filter(username="bob").exists()
    assert not ApiKey.objects.exists() and not Conversation.objects.exists()
    assert UsageRecord.objects.get().user is None
    assert AuditEntry.objects.filter(action="userdata.delete").exists()


def test_the_admin_action_exports_a_users_data(client, admin, student):
    client.force_login(admin)
    answer = client.post(
        "/admin/governance/datasubject/",
        {"action": "export_data", "_selected_action": [student.pk]},
    )
    assert answer.status_code == 200
    assert json.loads(answer.content)["bob"]["account"]["username"] == "bob"


def test_logs_never_contain_api_keys(caplog, admin, student):
    _, raw = apikey_create(user=student, actor=admin)
    logger = logging.getLogger("caipi.gateway.anything")
    with caplog.at_level(logging.INFO):
        logger.warning("refused key %s", raw)
        logger.info(f"Authorization: Bearer {raw}")
        logger.error("upstream said: Bearer sk-abcdefghijklmnopqrstuvwxyz")
    secret = raw.split("-", 2)[2]
    assert secret not in caplog.text and "abcdefghijklmnop" not in caplog.text
    assert raw.split("-")[1] in caplog.text  # the visible prefix stays, to find the key


def test_audit_entries_record_admin_changes_with_before_and_after(client, admin):
    client.force_login(admin)
    add = {
        "scope": "user",
        "metric": "tokens",
        "window": "day",
        "size": "100",
        "managed_by": "admin",
    }
    client.post("/admin/governance/quotalimit/add/", add)
    entry = AuditEntry.objects.get(action="quotalimit.create")
    assert entry.actor == admin and entry.after["size"] == 100 and entry.before is None
