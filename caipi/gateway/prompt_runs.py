"""Running a published template for a student: render, relay, stream, record.

The combining step of the prompts app (templates, inputs, rendering) with the gateway
(quota, routing, streaming) and governance (policy, history). In order:

1. ``run_prepare`` (sync, in a thread): refuse any attempt to set what the lecturer set
   (system prompt, model, parameters, messages) — only ``inputs``, ``history`` and a
   ``follow_up`` may be sent; find the published version the user may run; check the
   inputs against its schema; build the context from the real course; render the prompts
   (student text inserted as delimited data); assemble the chat body from the version's
   model and parameters.
2. The relay reserves the quota, opens the stream on an endpoint (affinity on the version,
   so its system prompt stays in an engine's prefix cache) and records usage with the
   version's id.
3. ``rendered`` passes the SSE bytes through unchanged, after one ``caipi_citations``
   event when the prompt holds lecture-note passages (``prompt_notes``), and, on the side,
   renders the answer so far as safe HTML (``transcript.with_answer_html``: ``data:
   {"caipi": {"html": ...}}`` events), then records the run (and, in courses that keep
   history, its inputs and answer).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.utils.translation import gettext as _

from caipi.core.errors import NotFound, PermissionDenied
from caipi.gateway.transcript import with_answer_html
from caipi.gateway.validation import InvalidRequest
from caipi.governance.selectors import course_keeps_conversations
from prompts import selectors, services
from prompts.context import context_build
from prompts.models import Template, TemplateVersion
from prompts.rendering import Passage, render_prompts
from prompts.rendering.data import MAX_ITEMS
from prompts.variables import inputs_clean

logger = logging.getLogger(__name__)

ALLOWED = frozenset({"inputs", "history", "follow_up"})
LECTURER_SET = frozenset(
    {"system_prompt", "user_prompt", "model", "params", "messages", "engine", "variables",
     "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed", "n",
     "tools", "response_format", "logit_bias", "presence_penalty", "frequency_penalty"}
)  # fmt: skip
MAX_TURNS = 20
MAX_TURN_CHARS = 20_000
MAX_FOLLOW_UP = 4000


@dataclass(frozen=True)
class PreparedRun:
    """A run ready to relay: the chat body and what to record when it ends."""

    template: Template
    version: TemplateVersion
    body: dict[str, Any]
    user_id: int
    inputs: dict[str, Any]
    record: bool = True
    citations: tuple[dict[str, Any], ...] = ()


def _refuse_lecturer_fields(payload: dict[str, Any]) -> None:
    taken = sorted(set(payload) & LECTURER_SET)
    if taken:
        raise PermissionDenied(
            _("The lecturer sets the prompt, model and parameters; you cannot change “%(f)s”.")
            % {"f": taken[0]},
            extra={"param": taken[0]},
        )
    unknown = sorted(set(payload) - ALLOWED)
    if unknown:
        raise InvalidRequest(_("Unknown field “%(f)s”.") % {"f": unknown[0]}, param=unknown[0])


def _history(raw: Any) -> list[dict[str, str]]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or len(raw) > MAX_TURNS * 2:
        raise InvalidRequest(_("The history must be a list of turns."), param="history")
    turns = []
    for turn in raw:
        ok = isinstance(turn, dict) and turn.get("role") in ("user", "assistant")
        content = turn.get("content") if isinstance(turn, dict) else None
        if not ok or not isinstance(content, str) or len(content) > MAX_TURN_CHARS:
            message = _("Each turn is a user or assistant message of at most %(n)s characters.")
            raise InvalidRequest(message % {"n": MAX_TURN_CHARS}, param="history")
        turns.append({"role": turn["role"], "content": content})
    return turns


def _follow_up(raw: Any) -> str | None:
    if raw in (None, ""):
        return None
    if not isinstance(raw, str) or len(raw) > MAX_FOLLOW_UP:
        message = _("A follow-up question has at most %(n)s characters.")
        raise InvalidRequest(message % {"n": MAX_FOLLOW_UP}, param="follow_up")
    return raw


def run_prepare(*, user: Any, template_id: int, payload: Any, request: Any = None) -> PreparedRun:
    """Everything before the call (step 1 of the module docstring); raises the refusals:
    PermissionDenied (lecturer-set fields, other course), NotFound (draft), InvalidRequest,
    TemplateInvalid (inputs), RenderRefused."""
    if not isinstance(payload, dict):
        raise InvalidRequest(_("The request body must be a JSON object."))
    _refuse_lecturer_fields(payload)
    template, version = selectors.template_for_run(user=user, template_id=template_id)
    return _prepared(user, template, version, payload, request)


def try_prepare(
    *, user: Any, template_id: int, version_id: int, payload: Any, request: Any = None
) -> PreparedRun:
    """A lecturer's try-out of any version (drafts too) as a sample student of the course
    would see it; not recorded as a run. Course staff only (PermissionDenied otherwise)."""
    if not isinstance(payload, dict):
        raise InvalidRequest(_("The request body must be a JSON object."))
    _refuse_lecturer_fields(payload)
    template = selectors.template_for_staff(user=user, template_id=template_id)
    version = services.version_of(template, version_id)
    from prompts.context import sample_student

    if template.course is None:
        raise NotFound(_("Library templates are tried in a course, after copying them."))
    student = sample_student(template.course)
    prepared = _prepared(student, template, version, payload, request, role="learner")
    return PreparedRun(
        template, version, prepared.body, user.pk, prepared.inputs, record=False,
        citations=prepared.citations,
    )  # fmt: skip


def _prepared(
    user: Any, template: Template, version: TemplateVersion, payload: dict[str, Any],
    request: Any, role: str | None = None,
) -> PreparedRun:  # fmt: skip
    specs = services.specs_of(version)
    inputs = inputs_clean(specs, payload.get("inputs"))
    history, follow_up = _history(payload.get("history")), _follow_up(payload.get("follow_up"))
    context = context_build(
        course=template.home, user=user, inputs=inputs, version=version, request=request,
        role=role,
    )  # fmt: skip
    prompts = render_prompts(
        system_prompt=version.system_prompt, user_prompt=version.user_prompt,
        engine=version.engine, specs=specs, context=context,
    )  # fmt: skip
    messages = [{"role": "system", "content": prompts.system}] if prompts.system.strip() else []
    messages.append({"role": "user", "content": prompts.user})
    messages += history
    if follow_up:
        messages.append({"role": "user", "content": follow_up})
    body = {**version.params, "model": version.model, "messages": messages}
    citations = _citations(context.passages, prompts.system + prompts.user)
    user_id = getattr(user, "pk", None) or 0
    return PreparedRun(template, version, body, user_id, inputs, citations=citations)


def _citations(passages: list[Passage], rendered: str) -> tuple[dict[str, Any], ...]:
    """The citations of the passages the rendered prompt holds, numbered as it numbers
    them (``<passage n="1" ...>``); none when the template does not use ``passages``."""
    if '<passage n="1"' not in rendered:
        return ()
    return tuple(
        {**passage.citation, "number": number}
        for number, passage in enumerate(passages[:MAX_ITEMS], start=1)
        if passage.citation is not None and f'<passage n="{number}"' in rendered
    )


def _record(prepared: PreparedRun, answer: str) -> int | None:
    """Record the run once it ended (off the path to the first token): the texts only
    when the course keeps history."""
    if not prepared.record:
        return None
    keep = course_keeps_conversations(course_id=prepared.template.home.pk)
    run = services.run_record(
        template=prepared.template, version=prepared.version, user_id=prepared.user_id,
        inputs=prepared.inputs, keep_history=keep,
    )  # fmt: skip
    if keep:
        services.run_keep_answer(run_id=run.pk, answer=answer)
    return run.pk


def rendered(chunks: AsyncIterator[bytes], prepared: PreparedRun) -> AsyncIterator[bytes]:
    """The stream unchanged, plus rendered-HTML events and the run record (step 3)."""

    async def finish(answer: str) -> dict[str, Any]:
        try:
            return {"run_id": await sync_to_async(_record)(prepared, answer)}
        except Exception:
            logger.exception("could not record a run of template %s", prepared.template.pk)
            return {"run_id": None}

    return with_answer_html(_citations_first(chunks, prepared.citations), finish)


async def _citations_first(
    chunks: AsyncIterator[bytes], citations: tuple[dict[str, Any], ...]
) -> AsyncIterator[bytes]:
    """The stream after one ``{"caipi_citations": [...]}`` event (as the course assistant
    sends it) when the prompt holds lecture-note passages."""
    if citations:
        yield b"data: " + orjson.dumps({"caipi_citations": list(citations)}) + b"\n\n"
    async for chunk in chunks:
        yield chunk
