"""What the course assistant needs from the notes: numbered passages, and the prompt.

``assistant_context`` searches the course's notes for the last question of a chat (a
follow-up made standalone first) and returns either the numbered passages with a system
message that tells the model to answer only from them and cite them as [1], [2], ... or,
when nothing relevant is found, ``answered=False``: the caller then says plainly that the
notes do not contain the answer instead of letting a model invent one.

The gateway calls this before relaying the chat; this module knows nothing of models,
quotas or streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from caipi.core.models import Course
from rag.models import CourseIndex
from rag.retrieval import Passage, Reranker, Rewriter, passages_search

ANSWER_RULES = (
    "You are the course assistant of {course}. Answer the student's question using only the "
    "numbered lecture-note passages below. Cite the passages you use with their numbers in "
    "square brackets, like [1] or [2][3]. If the passages do not contain the answer, say that "
    "the lecture notes do not cover it; do not use other knowledge. Answer in the language of "
    "the question."
)
REWRITE_RULES = (
    "Rewrite the user's last question as one standalone search query that can be understood "
    "without the conversation. Keep its language. Answer with the query only."
)


@dataclass
class Citation:
    """One numbered source of an answer, as the assistant page shows it."""

    number: int
    passage: Passage

    def as_dict(self) -> dict[str, Any]:
        p = self.passage
        return {
            "number": self.number,
            "document": p.document_title,
            "heading": p.heading,
            "page": p.page,
            "url": reverse("rag:passage", args=[p.chunk_id]),
            "lms_url": p.url,
            "chunk_id": p.chunk_id,
            "document_id": p.document_id,
            "quote": p.text[:300],
        }


@dataclass
class AssistantContext:
    """The notes' answer to one chat turn: citations and the system message, or nothing."""

    has_documents: bool
    answered: bool
    question: str
    citations: list[Citation] = field(default_factory=list)
    system_message: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def document_ids(self) -> list[int]:
        return sorted({c.passage.document_id for c in self.citations})


def last_question(messages: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """The last user message's text, and the conversation before it (text turns only)."""
    turns = [
        {"role": str(m.get("role")), "content": m["content"]}
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), str)
    ]
    for index in range(len(turns) - 1, -1, -1):
        if turns[index]["role"] == "user":
            return turns[index]["content"], turns[:index]
    return "", []


def assistant_context(
    *,
    course: Course,
    user: Any,
    messages: list[dict[str, Any]],
    rewriter: Rewriter | None = None,
    reranker: Reranker | None = None,
) -> AssistantContext:
    """Search the notes for the chat's last question (raises PermissionDenied like search)."""
    question, conversation = last_question(messages)
    if not question.strip():
        return AssistantContext(has_documents=False, answered=False, question="")
    budget = CourseIndex.objects.filter(course=course).values_list("context_tokens", flat=True)
    result = passages_search(
        course=course,
        user=user,
        query=question,
        k=settings.RAG_MAX_PASSAGES,
        conversation=conversation,
        rewriter=rewriter,
        reranker=reranker,
        token_budget=budget.first() or settings.RAG_CONTEXT_TOKENS,
    )
    context = AssistantContext(
        has_documents=result.has_documents,
        answered=result.answered,
        question=question,
        citations=[Citation(n, p) for n, p in enumerate(result.passages, start=1)],
        timings=result.timings,
    )
    if context.answered:
        context.system_message = _system_message(course, context.citations)
    return context


def _system_message(course: Course, citations: list[Citation]) -> str:
    lines = [ANSWER_RULES.format(course=course.title), ""]
    for citation in citations:
        p = citation.passage
        where = ", ".join(
            part
            for part in (p.document_title, p.heading, f"page {p.page}" if p.page else "")
            if part
        )
        lines.append(f"[{citation.number}] ({where})\n{p.text}\n")
    return "\n".join(lines)


def not_in_notes_message() -> str:
    """What the assistant says when the notes do not answer (no model is asked)."""
    return _(
        "The lecture notes of this course do not contain an answer to this question, so I "
        "will not guess. Try asking differently, or ask your lecturer."
    )


def rewrite_request(conversation: list[dict[str, str]]) -> list[dict[str, str]]:
    """The chat messages that ask a model to make the last question standalone."""
    transcript = "\n".join(f"{m['role']}: {m['content']}" for m in conversation[-6:])
    return [
        {"role": "system", "content": REWRITE_RULES},
        {"role": "user", "content": transcript},
    ]
