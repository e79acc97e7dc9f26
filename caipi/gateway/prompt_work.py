"""Queued template work: test runs and batch runs, run through the same relay as chat.

Both are Celery tasks on the model's own queue (``model.<name>``, see ``jobs``) that claim
their status row, then call the model one item at a time (tests) or in waves only as wide
as the capacity interactive calls leave free (batches), saving progress as they go.
Every call is charged to the lecturer who started the work and recorded in usage with the
version's id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from caipi.core.errors import ApplicationError
from caipi.gateway import relay
from caipi.gateway import selectors as gateway_selectors
from caipi.gateway.catalog import catalog
from caipi.gateway.upstream_call import call_open, call_prepare
from caipi.gateway.validation import CHAT
from caipi.governance.principal import Principal, principal_for_user
from deploy import vllm_client
from prompts import services
from prompts.checks import checks_parse, checks_run, judge_messages, judge_verdict
from prompts.context import context_build, sample_student
from prompts.models import BatchItem, BatchItemStatus, BatchRun, PromptSettings, TemplateVersion
from prompts.rendering import render_prompts
from prompts.variables import inputs_clean

logger = logging.getLogger(__name__)

WAVE_RETRIES = 3
CAPACITY_WAIT_SECONDS = 0.5


def work_enqueue(task: Any, row_id: int, model: str) -> None:
    """Send ``task(row_id)`` to the model's queue (interactive calls never wait on it)."""
    task.apply_async(args=[row_id], queue=f"model.{model}")


def chat_body(version: TemplateVersion, *, user: Any, inputs_raw: dict[str, Any]) -> dict:
    """The chat request of one queued item, rendered for ``user`` (a student or sample)."""
    specs = services.specs_of(version)
    inputs = inputs_clean(specs, inputs_raw)
    context = context_build(
        course=version.template.home, user=user, inputs=inputs, version=version,
        role="learner",
    )  # fmt: skip
    prompts = render_prompts(
        system_prompt=version.system_prompt, user_prompt=version.user_prompt,
        engine=version.engine, specs=specs, context=context,
    )  # fmt: skip
    messages = [{"role": "system", "content": prompts.system}] if prompts.system.strip() else []
    messages.append({"role": "user", "content": prompts.user})
    return {**version.params, "model": version.model, "messages": messages, "stream": False}


async def _complete(
    principal: Principal, body: dict[str, Any], version_id: int | None
) -> tuple[str, dict[str, int]]:
    """One non-streamed call: the answer text and its token usage."""
    call = call_prepare(principal, CHAT, dict(body), model_name=body["model"])
    call.template_version_id = version_id
    upstream = await call_open(call)
    raw = await relay.complete(call, upstream)
    if upstream.response.status >= 300:
        raise ApplicationError(
            f"The model refused the request: {raw[:300].decode(errors='replace')}"
        )
    answer = orjson.loads(raw)
    text = answer["choices"][0]["message"].get("content") or ""
    return text, answer.get("usage") or {}


def complete_sync(
    principal: Principal, body: dict[str, Any], version_id: int | None
) -> tuple[str, dict[str, int]]:
    """``_complete`` from synchronous code (a Celery worker), closing its connections."""

    async def once() -> tuple[str, dict[str, int]]:
        try:
            return await _complete(principal, body, version_id)
        finally:
            await vllm_client.close_session()

    return asyncio.run(once())


def _judge(principal: Principal) -> Any:
    """A rubric judge on the admin's judge model, or None when none is set."""
    model = PromptSettings.load().judge_model
    if not model:
        return None

    def judge(rubric: str, answer: str) -> tuple[bool, str]:
        body = {"model": model, "messages": judge_messages(rubric, answer), "max_tokens": 200,
                "temperature": 0, "stream": False}  # fmt: skip
        try:
            reply, _usage = complete_sync(principal, body, None)
        except ApplicationError as exc:
            return False, f"The judge model could not answer: {exc.message}"
        return judge_verdict(reply)

    return judge


def testrun_execute(*, run_id: int) -> None:
    """Run a claimed-or-queued test run case by case (see the module docstring)."""
    if not services.testrun_claim(run_id=run_id):
        logger.info("test run %s already taken or finished", run_id)
        return
    from prompts.models import TestRun

    run = TestRun.objects.select_related("version__template__course").get(pk=run_id)
    version = run.version
    try:
        catalog().reload()
        if run.started_by_id is None:
            raise ApplicationError("The person who started the tests no longer exists.")
        course = version.template.home
        principal = principal_for_user(user_id=run.started_by_id, course_id=course.pk)
        judge, student = _judge(principal), sample_student(course)
        for case in version.tests.all():
            try:
                body = chat_body(version, user=student, inputs_raw=case.inputs)
                answer, _usage = complete_sync(principal, body, version.pk)
            except ApplicationError as exc:
                services.testresult_record(
                    run=run, case=case, answer="", checks=[], error=str(exc.message)
                )
                continue
            checks = checks_run(checks_parse(case.checks)[0], answer, judge=judge)
            services.testresult_record(
                run=run, case=case, answer=answer, checks=[c.as_dict() for c in checks]
            )
    except Exception as exc:
        logger.exception("test run %s broke", run_id)
        services.testrun_finish(run=run, error=str(exc)[:500] or type(exc).__name__)
        return
    services.testrun_finish(run=run)


async def _item(principal: Principal, body: dict[str, Any], version_id: int) -> Any:
    try:
        return await _complete(principal, body, version_id)
    except ApplicationError as exc:
        return exc


async def _wave(principal: Principal, bodies: list[dict[str, Any]], version_id: int) -> list[Any]:
    try:
        return await asyncio.gather(*(_item(principal, body, version_id) for body in bodies))
    finally:
        await vllm_client.close_session()


def _bodies(batch: BatchRun, items: list[BatchItem]) -> list[Any]:
    student = sample_student(batch.course)
    bodies: list[Any] = []
    for item in items:
        try:
            bodies.append(
                chat_body(batch.version, user=item.user or student, inputs_raw=item.inputs)
            )
        except ApplicationError as exc:
            bodies.append(exc)
    return bodies


def _record_wave(items: list[BatchItem], answers: list[Any], attempt: int) -> list[BatchItem]:
    """Record each answer; return the items to try again (retryable refusals)."""
    again = []
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, ApplicationError):
            if answer.retryable and attempt < WAVE_RETRIES:
                again.append(item)
            else:
                services.batch_item_record(item=item, error=str(answer.message))
            continue
        text, usage = answer
        services.batch_item_record(
            item=item, answer=text, prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )  # fmt: skip
    return again


def batch_execute(*, batch_id: int) -> None:
    """Run a queued batch wave by wave; stops early when it is cancelled."""
    if not services.batch_claim(batch_id=batch_id):
        logger.info("batch %s already taken, finished or cancelled", batch_id)
        return
    batch = BatchRun.objects.select_related("version__template__course", "course").get(pk=batch_id)
    try:
        catalog().reload()
        model = catalog().models.get(batch.version.model)
        if model is None:
            services.batch_finish(
                batch_id=batch_id, error=f"The model '{batch.version.model}' is not served."
            )
            return
        if batch.created_by_id is None:
            raise ApplicationError("The person who started the batch no longer exists.")
        principal = principal_for_user(user_id=batch.created_by_id, course_id=batch.course_id)
        pending = list(batch.items.filter(status=BatchItemStatus.PENDING).select_related("user"))
        attempts: dict[int, int] = {}
        while pending:
            if services.batch_is_cancelled(batch_id=batch_id):
                return
            width = gateway_selectors.job_capacity(model, gateway_selectors.interactive_inflight())
            if width == 0:
                time.sleep(CAPACITY_WAIT_SECONDS)  # interactive traffic has every slot
                continue
            wave, pending = pending[:width], pending[width:]
            bodies = _bodies(batch, wave)
            ready = [
                (item, body)
                for item, body in zip(wave, bodies, strict=True)
                if isinstance(body, dict)
            ]
            for item, body in zip(wave, bodies, strict=True):
                if not isinstance(body, dict):
                    services.batch_item_record(item=item, error=body.message)
            answers = asyncio.run(_wave(principal, [b for _, b in ready], batch.version_id))
            attempt = 1 + max((attempts.get(i.pk, 0) for i, _ in ready), default=0)
            again = _record_wave([i for i, _ in ready], answers, attempt)
            for item in again:
                attempts[item.pk] = attempt
            if again:
                time.sleep(min(2.0, 0.25 * 2**attempt))
            pending = again + pending
    except Exception as exc:
        logger.exception("batch %s broke", batch_id)
        services.batch_finish(batch_id=batch_id, error=str(exc)[:500] or type(exc).__name__)
        return
    services.batch_finish(batch_id=batch_id)
