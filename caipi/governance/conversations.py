"""Kept conversations: only in courses that opted in (``CourseSettings.keep_conversations``).

Nothing here runs for a course that did not opt in; the retention task
(``services.conversations_purge_expired``) deletes what is past the course's retention.
"""

from __future__ import annotations

from django.db import transaction

from caipi.governance.models import Conversation, CourseSettings, Message


def course_keeps_conversations(*, course_id: int) -> bool:
    """True when the course opted in to keeping conversations."""
    return CourseSettings.objects.filter(course_id=course_id, keep_conversations=True).exists()


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
