"""The course assistant answers from the course's lecture notes (rag) through the relay.

For each chat turn of a course that has notes:

1. A follow-up is made standalone: by the chat model itself (a short extra call through
   the relay, charged like any call) when ``CAIPI_RAG_REWRITE_FOLLOW_UPS`` is on; otherwise
   rag searches the question with and without the previous one and fuses the rankings.
2. rag searches the notes this student may see (``rag.assistant.assistant_context``). When
   the admin has set up a reranker (an enabled model of kind ``rerank``, served by vLLM's
   ``/v1/rerank``) that this student may use, rag may ask it to re-order the top passages:
   only when the ranking is uncertain (see ``rag.retrieval``), as a call through the relay
   charged like any other; a failing reranker leaves the fused order.
3. Nothing relevant: the student is told plainly that the notes do not contain the answer;
   no model is asked, nothing is charged.
4. Otherwise the numbered passages go into a system message ahead of the chat, and the
   answer streams with a first SSE event ``{"caipi_citations": [...]}`` the page turns into
   numbered links that open each quoted passage.

A course without notes chats as before; the first event says so (``caipi_notes: "none"``),
so the page can tell the student the answer does not come from the course.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from caipi.core.errors import ApplicationError
from caipi.core.models import Course
from caipi.gateway import relay
from caipi.gateway.background import ensure_started
from caipi.gateway.catalog import catalog
from caipi.gateway.upstream_call import call_open, call_prepare
from caipi.gateway.validation import CHAT, RERANK
from caipi.governance.models import CourseSettings
from caipi.governance.principal import Principal, principal_may_use_model
from rag import services as rag_services
from rag.assistant import (
    AssistantContext,
    assistant_context,
    last_question,
    not_in_notes_message,
    rewrite_request,
)
from rag.retrieval import Reranker

logger = logging.getLogger(__name__)


@dataclass
class NotesTurn:
    """One chat turn's notes: what rag found, and the body to send to the model."""

    context: AssistantContext
    body: dict[str, Any]

    @property
    def answered(self) -> bool:
        return self.context.answered

    @property
    def has_documents(self) -> bool:
        return self.context.has_documents


async def notes_turn(
    *, user: Any, course_id: int, principal: Principal, body: dict[str, Any]
) -> NotesTurn:
    """Search the course's notes for this turn (steps 1-2 of the module doc)."""
    sent = body.get("messages")
    messages: list[dict[str, Any]] = sent if isinstance(sent, list) else []
    rewritten = None
    if settings.RAG_REWRITE_FOLLOW_UPS:
        rewritten = await _rewrite(principal, body.get("model"), messages)
    await ensure_started()
    reranker = _reranker(principal)
    started = time.perf_counter()
    context = await sync_to_async(_context)(user, course_id, messages, rewritten, reranker)
    context.timings["notes_ms"] = (time.perf_counter() - started) * 1000
    if context.answered:
        others = [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]
        body = {
            **body,
            "messages": [{"role": "system", "content": context.system_message}, *others],
        }
    return NotesTurn(context=context, body=body)


def _context(
    user: Any,
    course_id: int,
    messages: list[dict[str, Any]],
    rewritten: str | None,
    reranker: Reranker | None = None,
) -> AssistantContext:
    course = Course.objects.get(pk=course_id)
    rewriter = (lambda _: rewritten) if rewritten else None
    context = assistant_context(
        course=course, user=user, messages=messages, rewriter=rewriter, reranker=reranker
    )
    if context.has_documents:
        _record(course_id, context)
    return context


def _record(course_id: int, context: AssistantContext) -> None:
    """Count the question (and the documents it used) for the lecturer's statistics; keep
    the text of an unanswered one only where the course keeps conversation history."""
    kept = CourseSettings.objects.filter(course_id=course_id, keep_conversations=True).first()
    rag_services.question_record(
        course_id=course_id,
        document_ids=context.document_ids,
        question=context.question if kept else None,
        retention_days=kept.retention_days if kept else 0,
    )


def rerank_model(principal: Principal) -> str | None:
    """The reranker the admin set up that this caller may use (the first by name), if any."""
    names = sorted(name for name, model in catalog().models.items() if model.kind == "rerank")
    return next((name for name in names if principal_may_use_model(principal, name)), None)


def _reranker(principal: Principal) -> Reranker | None:
    """A reranker for rag's search (called in its worker thread), or None."""
    model = rerank_model(principal)
    if model is None:
        return None

    def rerank(query: str, documents: list[str]) -> list[float]:
        return async_to_sync(rerank_scores)(principal, model, query, documents)

    return rerank


async def rerank_scores(
    principal: Principal, model: str, query: str, documents: list[str]
) -> list[float]:
    """Relevance of each document to the query from the reranker ``model`` (``/v1/rerank``
    through the relay: routed, limited and charged like any call). Raises ApplicationError
    or ValueError when it cannot answer; rag then keeps its own order."""
    request = {"model": model, "query": query, "documents": documents}
    call = call_prepare(principal, RERANK, request, model_name=model)
    upstream = await call_open(call)
    answer = orjson.loads(await relay.complete(call, upstream))
    if upstream.response.status >= 300 or not isinstance(answer.get("results"), list):
        raise ValueError(f"the reranker answered {upstream.response.status}")
    scores = [0.0] * len(documents)
    for item in answer["results"]:
        scores[int(item["index"])] = float(item["relevance_score"])
    return scores


async def _rewrite(principal: Principal, model: Any, messages: list[dict[str, Any]]) -> str | None:
    """The chat model's standalone version of a follow-up; None for a first question or on
    any failure (the search then falls back to fusing the question with the previous one)."""
    question, conversation = last_question(messages)
    if not isinstance(model, str) or not any(m["role"] == "user" for m in conversation):
        return None
    request = {
        "model": model,
        "messages": rewrite_request([*conversation, {"role": "user", "content": question}]),
        "max_tokens": 64,
        "temperature": 0,
        "stream": False,
    }
    try:
        call = call_prepare(principal, CHAT, request, model_name=model)
        upstream = await call_open(call)
        answer = orjson.loads(await relay.complete(call, upstream))
        return str(answer["choices"][0]["message"]["content"]).strip() or None
    except (ApplicationError, KeyError, IndexError, TypeError, orjson.JSONDecodeError):
        logger.info("follow-up rewriting failed; searching with the question as asked")
        return None


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def with_citations(chunks: AsyncIterator[bytes], turn: NotesTurn) -> AsyncIterator[bytes]:
    """The model's stream, after one event with the numbered citations."""
    yield _event({"caipi_citations": [c.as_dict() for c in turn.context.citations]})
    async for chunk in chunks:
        yield chunk


async def without_notes(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The model's stream, after one event saying the course has no notes to answer from."""
    yield _event({"caipi_notes": "none"})
    async for chunk in chunks:
        yield chunk


async def not_in_notes(model: str) -> AsyncIterator[bytes]:
    """A complete answer, in the chat stream's own shape, saying the notes do not know."""
    created = int(time.time())
    base = {
        "id": "caipi-notes",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
    }
    yield _event({"caipi_notes": "no_answer", "caipi_citations": []})
    delta = {"role": "assistant", "content": not_in_notes_message()}
    yield _event({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
    yield _event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    yield b"data: [DONE]\n\n"
