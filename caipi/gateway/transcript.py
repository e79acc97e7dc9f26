"""Collect the answer text of a streamed chat on the side of the stream.

The relay passes SSE bytes through untouched. ``transcribed`` parses each chunk's
``delta.content`` on the side and hands the full text to a callback at the end (courses
that keep conversations). ``with_answer_html`` also renders the answer so far as safe HTML
(``prompts.markdown.answer_html``: Markdown, code, math, then the sanitizer) every
``RENDER_EVERY`` seconds and once at the end, as ``data: {"caipi": {"html": ...}}`` events:
the one way the pages (the prompt run page, the course assistant) show Markdown.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from prompts.markdown import answer_html

logger = logging.getLogger(__name__)

RENDER_EVERY = 0.4


def delta_texts(event_block: bytes) -> list[str]:
    """The ``choices[0].delta.content`` strings of the ``data:`` lines in an SSE block."""
    texts = []
    for line in event_block.split(b"\n"):
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        try:
            chunk = orjson.loads(line[6:])
        except orjson.JSONDecodeError:
            continue
        for choice in chunk.get("choices") or ():
            content = (choice.get("delta") or {}).get("content")
            if content:
                texts.append(content)
    return texts


async def transcribed(
    chunks: AsyncIterator[bytes], on_done: Callable[[str], Awaitable[None]]
) -> AsyncIterator[bytes]:
    """Yield ``chunks`` unchanged; when they end, await ``on_done(answer_text)``."""
    buffer, parts = b"", []
    async for chunk in chunks:
        yield chunk
        buffer += chunk
        *blocks, buffer = buffer.split(b"\n\n")
        for block in blocks:
            parts.extend(delta_texts(block))
    parts.extend(delta_texts(buffer))
    await on_done("".join(parts))


def html_event(text: str, *, final: bool, **extra: Any) -> bytes:
    """``data: {"caipi": {"html": <sanitized HTML of text>, "final": ..., **extra}}``."""
    data = {"caipi": {"html": answer_html(text), "final": final, **extra}}
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def with_answer_html(
    chunks: AsyncIterator[bytes],
    finish: Callable[[str], Awaitable[dict[str, Any]]] | None = None,
) -> AsyncIterator[bytes]:
    """``chunks`` unchanged, plus rendered-HTML events while the answer grows (rendered in
    a thread, at most every ``RENDER_EVERY`` s) and a final one when the stream completed.
    ``finish(answer)`` runs when the stream ends, completed or not; what it returns goes
    into the final event (e.g. the run's id)."""
    buffer, parts = b"", []
    last_render, rendered_length = time.monotonic(), 0
    completed, extra = False, {}
    try:
        async for chunk in chunks:
            yield chunk
            buffer += chunk
            *blocks, buffer = buffer.split(b"\n\n")
            for block in blocks:
                parts.extend(delta_texts(block))
            text = "".join(parts)
            if len(text) > rendered_length and time.monotonic() - last_render >= RENDER_EVERY:
                yield await asyncio.to_thread(html_event, text, final=False)
                last_render, rendered_length = time.monotonic(), len(text)
        completed = True
    finally:
        parts.extend(delta_texts(buffer))
        answer = "".join(parts)
        if finish is not None:
            extra = await finish(answer)
    if completed:
        yield await asyncio.to_thread(html_event, answer, final=True, **extra)
