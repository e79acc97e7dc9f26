"""Lecture-note passages for prompt templates that opt into retrieval (``use_notes``).

Registered with ``prompts.registry.register_context_provider`` (the prompts app does not
import rag): for a run, preview or try-out of such a version, the student's text inputs are
searched in the course's notes that this user may see, exactly as the course assistant
searches a question (``rag.retrieval.passages_search``, with the course's passage budget).
Each passage found becomes a ``prompts.rendering.Passage`` for the ``passages`` variable,
carrying the citation the run page shows (the assistant's own citation shape).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from caipi.core.models import Course
from prompts.models import TemplateVersion
from prompts.rendering import Passage
from rag.assistant import Citation
from rag.models import CourseIndex
from rag.retrieval import passages_search

MAX_QUERY = 2000


def notes_query(inputs: dict[str, Any]) -> str:
    """What to search for: the student's text inputs (choices included), in order."""
    texts = [value.strip() for value in inputs.values() if isinstance(value, str)]
    return "\n".join(text for text in texts if text)[:MAX_QUERY]


def _source(passage: Any) -> str:
    where = [passage.document_title, passage.heading]
    if passage.page:
        where.append(f"p. {passage.page}")
    return ", ".join(part for part in where if part)


def notes_context(
    *, course: Course, user: Any, inputs: dict[str, Any], version: TemplateVersion | None = None,
    **_: Any,
) -> dict[str, Any]:  # fmt: skip
    """``{"passages": [...]}`` for a version with ``use_notes``; ``{}`` otherwise. Raises
    PermissionDenied when the user may not read the course's notes (the context builder
    then runs without them)."""
    if version is None or not version.use_notes:
        return {}
    query = notes_query(inputs)
    if not query or getattr(user, "pk", None) is None:
        return {}
    budget = CourseIndex.objects.filter(course=course).values_list("context_tokens", flat=True)
    result = passages_search(
        course=course, user=user, query=query, k=version.notes_count,
        token_budget=budget.first() or settings.RAG_CONTEXT_TOKENS,
    )  # fmt: skip
    if not result.answered:
        return {"passages": []}
    return {
        "passages": [
            Passage(text=p.text, source=_source(p), citation=Citation(n, p).as_dict())
            for n, p in enumerate(result.passages, start=1)
        ]
    }
