"""Checks a /v1 request body before anything is sent upstream.

Only what CAIPI must know (model, stream, token budget) and what is cheap to get wrong
(types and ranges of common sampling parameters) is checked; every other field is passed
through untouched for the engine to judge. Errors are ``InvalidRequest`` (400) naming the
offending ``param``, in OpenAI's error shape.
"""

from __future__ import annotations

from typing import Any

from caipi.core.errors import ApplicationError, PayloadTooLarge
from caipi.core.jsonbody import JsonBodyError, json_loads_bounded

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
RERANK = "/v1/rerank"  # vLLM's score API for rerankers (query + documents -> relevance)
# Which model kinds may serve which path.
KINDS_FOR_PATH = {
    CHAT: ("chat",),
    COMPLETIONS: ("chat", "completion"),
    EMBEDDINGS: ("embedding",),
    RERANK: ("rerank",),
}

_NUMBER_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "presence_penalty": (-2.0, 2.0),
    "frequency_penalty": (-2.0, 2.0),
}
# Upper ends keep every reservation a modest integer (Redis counters are 64-bit).
_POSITIVE_INTS = {
    "max_tokens": 16_777_216,
    "max_completion_tokens": 16_777_216,
    "n": 128,
    "best_of": 128,
}
_BOOLS = ("stream", "logprobs", "echo")


class InvalidRequest(ApplicationError):
    """A request body CAIPI refuses to forward (HTTP 400)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, extra={"param": param})


def parse_body(raw: bytes, *, limit: int) -> dict[str, Any]:
    """Decode a JSON object body. Raises PayloadTooLarge (413) or InvalidRequest (400),
    also for a body nested deeper than ``caipi.core.jsonbody.MAX_DEPTH``."""
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    try:
        body = json_loads_bounded(raw)
    except JsonBodyError as exc:
        raise InvalidRequest(exc.message) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_common(body: dict[str, Any]) -> None:
    for name, most in _POSITIVE_INTS.items():
        value = body.get(name)
        if value is not None and (not _is_int(value) or not 1 <= value <= most):
            raise InvalidRequest(f"'{name}' must be a whole number from 1 to {most}.", param=name)
    for name, (low, high) in _NUMBER_RANGES.items():
        value = body.get(name)
        if value is not None and (not _is_number(value) or not low <= value <= high):
            raise InvalidRequest(f"'{name}' must be a number from {low} to {high}.", param=name)
    for name in _BOOLS:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise InvalidRequest(f"'{name}' must be true or false.", param=name)
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise InvalidRequest("'seed' must be a whole number.", param="seed")
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise InvalidRequest("'stop' must be a string or a list of strings.", param="stop")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")


def _check_messages(body: dict[str, Any]) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty list.", param="messages")
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                "Each message must be an object with a string 'role'.", param="messages"
            )


def _check_prompt(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    ok = (isinstance(value, str) and value != "") or (isinstance(value, list) and len(value) > 0)
    if not ok:
        raise InvalidRequest(f"'{name}' must be a non-empty string or list.", param=name)


def _check_rerank(body: dict[str, Any]) -> None:
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise InvalidRequest("'query' must be a non-empty string.", param="query")
    documents = body.get("documents")
    if (
        not isinstance(documents, list)
        or not documents
        or not all(isinstance(d, str) for d in documents)
    ):
        raise InvalidRequest("'documents' must be a non-empty list of strings.", param="documents")


def check_body(path: str, body: dict[str, Any]) -> str:
    """Check ``body`` for ``path``; return the requested model name. Raises InvalidRequest."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be the name of a model.", param="model")
    _check_common(body)
    if path == CHAT:
        _check_messages(body)
    elif path == COMPLETIONS:
        _check_prompt(body, "prompt")
    elif path == RERANK:
        _check_rerank(body)
    else:
        _check_prompt(body, "input")
    return model


def requested_max_tokens(body: dict[str, Any], default: int) -> int:
    """The completion budget to reserve: what the client asked for, else ``default``."""
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else default
