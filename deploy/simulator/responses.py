"""Response bodies and SSE chunks in vLLM's exact shapes.

Streaming is the hot path (one call per emitted token for 1000+ streams), so each stream
pre-builds the constant bytes of its chunks once and per token only JSON-escapes the new
text and concatenates. Chunks follow vLLM's serving code: the role delta goes out with
the first token, the last token's chunk carries ``finish_reason`` and ``stop_reason``,
then (if ``stream_options.include_usage``) a chunk with ``"choices": []`` and ``usage``,
then ``data: [DONE]``. With ``continuous_usage_stats`` too, every chunk carries the usage
so far, as vLLM's do.
"""

from __future__ import annotations

import base64
import math
import os
import struct
import time
import zlib
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from deploy.simulator.engine import Sequence
    from deploy.simulator.httpserver import Exchange
    from deploy.simulator.protocol import GenerationRequest

DONE_EVENT = b"data: [DONE]\n\n"


def new_id(prefix: str) -> str:
    """Return a fresh response id such as ``chatcmpl-3f2a...`` (vLLM's format)."""
    return f"{prefix}-{os.urandom(16).hex()}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    """Return the usage object in vLLM's field order."""
    return {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
    }


def _chunk_meta(kind: str, model: str) -> bytes:
    """Return the bytes every chunk of one stream starts with, up to its choices."""
    is_chat = kind == "chat"
    meta = {
        "id": new_id("chatcmpl" if is_chat else "cmpl"),
        "object": "chat.completion.chunk" if is_chat else "text_completion",
        "created": int(time.time()),
        "model": model,
    }
    # Drop the closing brace so choices/usage can be appended to the same object.
    return b"data: " + orjson.dumps(meta)[:-1]


class StreamSink:
    """Writes one SSE stream (chat or completion) for one sequence."""

    __slots__ = ("_continuous", "_exchange", "_head", "_include_usage", "_meta", "_role", "_tail")

    def __init__(self, exchange: Exchange, request: GenerationRequest, model: str) -> None:
        meta = _chunk_meta(request.kind, model)
        self._exchange = exchange
        self._meta = meta
        self._include_usage = request.include_usage
        self._continuous = request.continuous_usage
        if request.kind == "chat":
            self._head = meta + b',"choices":[{"index":0,"delta":{"content":'
            self._tail = b'},"logprobs":null,"finish_reason":null}]}\n\n'
            self._role = (
                meta + b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},'
                b'"logprobs":null,"finish_reason":null}]}\n\n'
            )
        else:
            self._head = meta + b',"choices":[{"index":0,"text":'
            self._tail = b',"logprobs":null,"finish_reason":null,"stop_reason":null}]}\n\n'
            self._role = b""

    def __call__(self, seq: Sequence, start: int, end: int) -> None:
        pieces = seq.pieces
        text = pieces[start] if end == start + 1 else "".join(pieces[start:end])
        chunk = self._head + orjson.dumps(text)
        if start == 0 and self._role:
            chunk = self._with_usage(self._role, seq, 0) + chunk
        if end < len(pieces):
            self._exchange.send_chunk(self._with_usage(chunk + self._tail, seq, end))
        else:
            self._exchange.end_stream(chunk + self._final(seq))

    def _with_usage(self, event: bytes, seq: Sequence, completion: int) -> bytes:
        """``event`` (one whole SSE event) with the usage so far, when the client asked
        for ``continuous_usage_stats``."""
        if not self._continuous:
            return event
        counts = orjson.dumps(usage(seq.prompt_tokens, completion))
        return event[:-3] + b',"usage":' + counts + b"}\n\n"

    def _final(self, seq: Sequence) -> bytes:
        reason = orjson.dumps({"finish_reason": seq.finish_reason, "stop_reason": seq.stop_reason})
        close = b"}" if self._role else b""  # a chat delta object is still open
        last = close + b',"logprobs":null,' + reason[1:] + b"]}\n\n"
        last = self._with_usage(last, seq, len(seq.pieces))
        if self._include_usage:
            counts = orjson.dumps(usage(seq.prompt_tokens, len(seq.pieces)))
            last += self._meta + b',"choices":[],"usage":' + counts + b"}\n\n"
        return last + DONE_EVENT


class WholeSink:
    """Answers a non-streaming request with one JSON body once the sequence ends."""

    __slots__ = ("_exchange", "_kind", "_model")

    def __init__(self, exchange: Exchange, request: GenerationRequest, model: str) -> None:
        self._exchange = exchange
        self._kind = request.kind
        self._model = model

    def __call__(self, seq: Sequence, start: int, end: int) -> None:
        if end < len(seq.pieces):
            return  # the first-token emission only matters for timing and metrics
        text = "".join(seq.pieces)
        choice: dict[str, Any] = {"index": 0}
        if self._kind == "chat":
            choice["message"] = {
                "role": "assistant",
                "content": text,
                "tool_calls": [],
                "reasoning_content": None,
            }
        else:
            choice["text"] = text
        choice |= {
            "logprobs": None,
            "finish_reason": seq.finish_reason,
            "stop_reason": seq.stop_reason,
        }
        body = {
            "id": new_id("chatcmpl" if self._kind == "chat" else "cmpl"),
            "object": "chat.completion" if self._kind == "chat" else "text_completion",
            "created": int(time.time()),
            "model": self._model,
            "choices": [choice],
            "usage": usage(seq.prompt_tokens, len(seq.pieces)) | {"prompt_tokens_details": None},
            "prompt_logprobs": None,
        }
        self._exchange.respond(200, orjson.dumps(body))


def embedding_body(
    vectors: list[list[float]], prompt_tokens: int, model: str, *, base64_encoded: bool
) -> bytes:
    """Return an ``/v1/embeddings`` response body (``base64`` packs little-endian float32)."""
    data = [
        {
            "index": index,
            "object": "embedding",
            "embedding": _pack(vector) if base64_encoded else vector,
        }
        for index, vector in enumerate(vectors)
    ]
    body = {
        "id": new_id("embd"),
        "object": "list",
        "created": int(time.time()),
        "model": model,
        "data": data,
        "usage": usage(prompt_tokens, 0) | {"prompt_tokens_details": None},
    }
    return orjson.dumps(body)


def rerank_body(
    documents: tuple[str, ...],
    scores: list[float],
    top_n: int | None,
    prompt_tokens: int,
    model: str,
) -> bytes:
    """Return a ``/v1/rerank`` response body: results best first, ``top_n`` of them."""
    order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))
    if top_n is not None:
        order = order[:top_n]
    body = {
        "id": new_id("rerank"),
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "results": [
            {"index": i, "document": {"text": documents[i]}, "relevance_score": scores[i]}
            for i in order
        ],
    }
    return orjson.dumps(body)


def _pack(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def truncate(vector: list[float], dimensions: int | None) -> list[float]:
    """Cut a unit vector to ``dimensions`` and renormalise it (Matryoshka style)."""
    if dimensions is None or dimensions >= len(vector):
        return vector
    head = vector[:dimensions]
    norm = math.sqrt(sum(value * value for value in head)) or 1.0
    return [value / norm for value in head]


def models_body(names: tuple[str, ...], root: str, max_model_len: int) -> bytes:
    """Return the ``/v1/models`` list in vLLM's ``ModelCard`` shape."""
    created = int(time.time())
    cards = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": root,
            "parent": None,
            "max_model_len": max_model_len,
            "permission": [
                {
                    "id": new_id("modelperm"),
                    "object": "model_permission",
                    "created": created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }
        for name in names
    ]
    return orjson.dumps({"object": "list", "data": cards})


def tokenize_body(tokens: list[str], max_model_len: int) -> bytes:
    """Return a ``/tokenize`` answer in vLLM's shape (ids are stable hashes of the text)."""
    ids = [zlib.crc32(token.encode()) % 32_000 for token in tokens]
    body = {"count": len(ids), "max_model_len": max_model_len, "tokens": ids, "token_strs": None}
    return orjson.dumps(body)
