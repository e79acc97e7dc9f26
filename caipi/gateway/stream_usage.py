"""Usage in a relayed SSE stream: read from its tail, counted, or stripped for the client.

CAIPI asks vLLM for usage in every chunk (``stream_options.continuous_usage_stats``), so a
stream the client abandons is settled from the last usage the engine reported, not from
a count of SSE events (an engine sending several tokens per event made that count a
fraction of what was generated). Clients that did not ask for per-chunk usage get it
stripped from each event (``without_usage``), with a few ``bytes.find`` calls per chunk
and no JSON parsing; the final usage-only event (``"choices":[]``) stays, as before.
"""

from __future__ import annotations

from typing import Any

import orjson

USAGE_KEY = b',"usage":{'
FINAL_EVENT = b'"choices":[]'


def usage_from_tail(tail: bytes) -> dict[str, Any] | None:
    """The ``usage`` object of the last complete SSE event in ``tail`` carrying one."""
    end = len(tail)
    while (at := tail.rfind(b'"usage":{', 0, end)) >= 0:
        start = tail.rfind(b"data: ", 0, at)
        stop = tail.find(b"\n", at)
        if start >= 0 and stop >= 0:
            try:
                event = orjson.loads(tail[start + 6 : stop])
            except orjson.JSONDecodeError:
                event = None
            found = event.get("usage") if isinstance(event, dict) else None
            if isinstance(found, dict):
                return found
        if start <= 0:
            return None
        end = start  # that event was cut or carried none: look at the ones before it
    return None


def usage_counted(events: int) -> dict[str, Any] | None:
    """Completion tokens estimated from the streamed events, for engines (llama.cpp) or
    broken streams that send no usage at all: one token per event, less the opening role
    event and ``[DONE]``. Charging nothing would let such calls run free of quota."""
    if events <= 0:
        return None
    return {"completion_tokens": max(0, events - 2)}


def _object_end(data: bytes, start: int) -> int:
    """Index just past the JSON object opening at ``data[start]``, or -1 when it does not
    close within ``data``. A usage object holds numbers, nulls and objects, no strings."""
    close = data.find(b"}", start)
    inner = data.find(b"{", start + 1, close) if close >= 0 else -1
    while inner >= 0 and close >= 0:  # a nested object (prompt_tokens_details)
        close = data.find(b"}", close + 1)
        inner = data.find(b"{", inner + 1, close) if close >= 0 else -1
    return close + 1 if close >= 0 else -1


def without_usage(chunk: bytes) -> bytes:
    """``chunk`` without the per-event ``usage`` objects; the final usage-only event keeps
    its own. A usage object split across two reads is left whole (still valid JSON)."""
    at = chunk.find(USAGE_KEY)
    if at < 0:
        return chunk
    kept: list[bytes] = []
    pos = 0
    while at >= 0:
        end = _object_end(chunk, at + len(USAGE_KEY) - 1)
        if end < 0:
            break
        if not chunk.endswith(FINAL_EVENT, 0, at):
            kept.append(chunk[pos:at])
            pos = end
        at = chunk.find(USAGE_KEY, end)
    kept.append(chunk[pos:])
    return b"".join(kept)
