"""Writes of kept conversations: only in courses that opted in (``keep_conversations``).

Nothing here runs for a course that did not opt in; ``conversations_purge_expired`` (a
periodic task) deletes what is past the course's retention.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from caipi.governance.models import Conversation, CourseSettings, Message

logger = logging.getLogger(__name__)


def conversation_open(*, user_id: int, course_id: int, conversation_id: object) -> int:
    """The id of the user's conversation ``conversation_id`` in that course, or of a new one.

    An unknown id, or one of another user or course, starts a new conversation instead.
    """
    if isinstance(conversation_id, int) and not isinstance(conversation_id, bool):
        own = Conversation.objects.filter(
            pk=conversation_id, user_id=user_id, course_id=course_id
        ).values_list("pk", flat=True)
        if own:
            return own[0]
    return Conversation.objects.create(user_id=user_id, course_id=course_id).pk


@transaction.atomic
def conversation_append(*, conversation_id: int, question: str, answer: str) -> None:
    """Keep one question and its answer as the conversation's next two messages."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation_id)
    conversation.save(update_fields=["updated_at"])
    Message.objects.bulk_create(
        [
            Message(conversation=conversation, role="user", content=question),
            Message(conversation=conversation, role="assistant", content=answer),
        ]
    )


def conversations_purge_expired(*, now: datetime | None = None) -> int:
    """Delete kept conversations older than their course's retention; returns how many."""
    now = now or timezone.now()
    deleted = 0
    keep = dict(
        CourseSettings.objects.filter(keep_conversations=True).values_list(
            "course_id", "retention_days"
        )
    )
    for course_id, days in keep.items():
        stale = Conversation.objects.filter(
            course_id=course_id, updated_at__lt=now - timedelta(days=days)
        )
        deleted += stale.delete()[1].get("governance.Conversation", 0)
    # A course that turned history off keeps nothing.
    rest = Conversation.objects.exclude(course_id__in=list(keep))
    deleted += rest.delete()[1].get("governance.Conversation", 0)
    logger.info("purged %d expired conversations", deleted)
    return deleted
