"""Request bodies as JSON, with nesting bounded at parse time.

Every JSON request body CAIPI parses goes through ``json_loads_bounded``: the /v1 API and
the course chat (``caipi.gateway.validation.parse_body``), the session REST API under
``/api/`` (``BoundedJSONParser``, DRF's parser) and the test LMS. A body nested deeper
than ``MAX_DEPTH`` is refused with 400 before anything re-serialises it: orjson refuses
to write more than 254 levels and Python's json recurses, so a deep body used to end in
a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 64


class JsonBodyError(ValueError):
    """A body that is not JSON, or JSON nested too deeply; callers answer 400 with
    ``message``. (Not an ApplicationError: DRF loads this module's parser while
    ``caipi.core.errors`` is still being imported.)"""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when ``value`` nests lists and objects more than ``limit`` levels deep.

    Iterative (no recursion, so any depth is safe) and visits only containers.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def json_loads_bounded(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``raw``; raises ``JsonBodyError`` (400) when it is not JSON or nests deeper
    than ``max_depth``.

    Costs one ``bytes.count`` pass on top of the parse for ordinary bodies: a body with
    fewer opening brackets than ``max_depth`` cannot nest that deep, so only bodies with
    many brackets are walked.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise JsonBodyError(_too_deep(max_depth)) from None
        raise JsonBodyError(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict | list):
        return value
    if data.count(b"[") + data.count(b"{") > max_depth and json_depth_exceeds(value, max_depth):
        raise JsonBodyError(_too_deep(max_depth))
    return value


def _too_deep(limit: int) -> str:
    return f"The request body nests lists and objects more than {limit} levels deep."


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser with ``json_loads_bounded``: deep or broken JSON is a 400."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw:
            raise ParseError("The request body is empty; send a JSON object.")
        try:
            return json_loads_bounded(raw)
        except JsonBodyError as exc:
            raise ParseError(exc.message) from None
