"""Collect the answer text of a streamed chat, for courses that keep conversations.

The relay passes SSE bytes through untouched; only when a course opted in to keeping
conversations does the course chat wrap its stream with ``transcribed``, which parses each
chunk's ``delta.content`` on the side and hands the full text to a callback at the end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson

logger = logging.getLogger(__name__)


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
