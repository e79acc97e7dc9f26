"""Usage records: queued without I/O, written in batches, never holding text."""

from __future__ import annotations

import pytest

from caipi.governance.models import UsageRecord
from caipi.governance.services.usage import usage_flush, usage_pending, usage_record

pytestmark = pytest.mark.django_db


def test_a_call_is_queued_and_written_as_one_record_with_the_members_role(student, course):
    usage_record(
        user_id=student.pk, key_id=None, course_id=course.pk, model="m", endpoint_id=3,
        prompt_tokens=12, completion_tokens=30, ttft_ms=80.5, duration_ms=900.0, outcome="ok",
    )  # fmt: skip
    assert usage_pending() == 1 and UsageRecord.objects.count() == 0
    assert usage_flush() == 1
    record = UsageRecord.objects.get()
    assert (record.user, record.course, record.role, record.total_tokens) == (
        student,
        course,
        "learner",
        42,
    )


def test_text_fields_are_never_stored(student):
    usage_record(
        user_id=student.pk, model="m", prompt="my secret essay", messages=[{"content": "x"}]
    )
    usage_flush()
    assert "secret" not in str(UsageRecord.objects.values().get())


def test_a_record_missing_fields_gets_the_models_defaults_and_its_time(student):
    from datetime import UTC, datetime, timedelta

    from caipi.governance.models import Outcome

    before = datetime.now(UTC)
    usage_record(user_id=student.pk, model="m", outcome=Outcome.UPSTREAM_ERROR, role="api")
    usage_record(user_id=student.pk, model="m", ttft_ms=None)
    assert usage_flush() == 2
    error, plain = UsageRecord.objects.order_by("id")
    assert (error.outcome, error.role, error.prompt_tokens, error.completion_tokens) == (
        "upstream_error", "api", 0, 0,
    )  # fmt: skip
    assert (plain.outcome, plain.course, plain.ttft_ms, plain.key_id) == ("ok", None, None, None)
    assert before - timedelta(seconds=1) <= plain.created_at <= datetime.now(UTC)
