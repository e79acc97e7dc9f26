"""Going on with a stream whose engine died mid-way, on another endpoint of the model.

When an endpoint breaks after the first bytes went to the client, the relay
(``caipi.gateway.relay``) sends the conversation again to another endpoint with the
answer so far as the assistant's unfinished final message (vLLM's
``"continue_final_message": true, "add_generation_prompt": false``; for
``/v1/completions`` the prompt followed by the text so far), asking only for the tokens
still allowed (``max_tokens`` less what was generated). The student sees one answer: the
continuation's chunks carry the first stream's ``id`` and ``created`` (one
``bytes.replace`` each per chunk, on the continued part only), its opening role-only
delta is left out, and its final usage chunk is rewritten to what the call is charged —
the prompt once and every completion token of every part — with
``"caipi": {"continued": N}`` beside it.

Only plain text streams with one choice are continued (``continuable``): tool calls, n>1,
logprobs, structured output (a grammar would restart), ``echo`` and token-id prompts
keep today's error event, as does a stream when no endpoint is left. Nothing here runs
per chunk for the first engine: the text so far is read from the relayed chunks only
when a continuation is needed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from caipi.gateway.stream_usage import FINAL_EVENT
from caipi.gateway.validation import CHAT, COMPLETIONS

# Request fields that make a stream more than plain text (see ``continuable``).
NOT_PLAIN = (
    "tools",
    "functions",
    "logprobs",
    "top_logprobs",
    "prompt_logprobs",
    "echo",
    "suffix",
    "guided_json",
    "guided_regex",
    "guided_choice",
    "guided_grammar",
    "structured_outputs",
)


def continuable(path: str, request: dict[str, Any] | None, choices: int) -> bool:
    """Whether a stream can go on elsewhere if its engine dies: a plain text answer, one
    choice, a prompt that text can be appended to."""
    if request is None or choices != 1 or path not in (CHAT, COMPLETIONS):
        return False
    if any(request.get(name) for name in NOT_PLAIN):
        return False
    response_format = request.get("response_format")
    if response_format and (
        not isinstance(response_format, dict) or response_format.get("type", "text") != "text"
    ):
        return False
    if path == COMPLETIONS:
        prompt = request.get("prompt")
        return isinstance(prompt, str) or (
            isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)
        )
    return isinstance(request.get("messages"), list)


@dataclass(slots=True)
class SoFar:
    """What a broken stream sent before it broke: its text, whether it already finished,
    and the ``id``/``created`` every later chunk must carry."""

    text: str
    finished: bool
    id: str | None
    created: int | None


def answer_so_far(chunks: Iterable[bytes], path: str, before: SoFar | None = None) -> SoFar:
    """Read the relayed (whole) SSE events: the answer's text so far, after ``before``
    (what earlier events said). Runs when a stream broke, and for a long answer once per
    ``relay.KEEP_BYTES`` of events, never per chunk."""
    texts: list[str] = [before.text] if before else []
    finished = before.finished if before else False
    first: dict[str, Any] = {"id": before.id, "created": before.created} if before else {}
    for event in b"".join(chunks).split(b"\n\n"):
        if not event.startswith(b"data: {"):
            continue
        try:
            parsed = orjson.loads(event[6:])
        except orjson.JSONDecodeError:
            continue
        if not isinstance(parsed, dict):
            continue
        if not first and "caipi_status" not in parsed:
            first = parsed
        for choice in parsed.get("choices") or ():
            delta = choice.get("delta") or {}
            texts.append((delta.get("content") if path == CHAT else choice.get("text")) or "")
            finished = finished or bool(choice.get("finish_reason"))
    return SoFar("".join(texts), finished, first.get("id"), first.get("created"))


def continuation_body(
    request: dict[str, Any], path: str, text: str, *, generated: int, tokens_left: int
) -> bytes:
    """The upstream request that goes on with ``text`` (``generated`` tokens), for at most
    ``tokens_left`` more."""
    body = {**request, "max_tokens": tokens_left}
    body.pop("max_completion_tokens", None)
    if body.get("min_tokens"):
        body["min_tokens"] = max(0, body["min_tokens"] - generated)
    if path == COMPLETIONS:
        prompt = body["prompt"]
        body["prompt"] = (prompt if isinstance(prompt, str) else prompt[0]) + text
        return orjson.dumps(body)
    messages = list(body["messages"])
    last = messages[-1] if messages else {}
    if (
        request.get("continue_final_message")
        and last.get("role") == "assistant"
        and isinstance(last.get("content"), str)
    ):
        messages[-1] = {**last, "content": last["content"] + text}  # the client's own prefix
    else:
        messages.append({"role": "assistant", "content": text})
    body.update(messages=messages, continue_final_message=True, add_generation_prompt=False)
    return orjson.dumps(body)


class Rewriter:
    """Makes a continuation's chunks read as the rest of the first stream.

    ``rewrite`` is called on each whole-event chunk of the continued part: the first one
    is parsed (to learn the continuation's own ``id``/``created`` and drop its role-only
    delta), the rest get two ``bytes.replace`` and one ``find`` for the final usage chunk.
    """

    __slots__ = ("_created", "_id", "_swaps", "continued", "done", "prompt", "usage")

    def __init__(self, so_far: SoFar, continued: int, done: int, prompt: int | None) -> None:
        self._id = so_far.id
        self._created = so_far.created
        self._swaps: list[tuple[bytes, bytes]] | None = None
        self.continued = continued
        self.done = done  # completion tokens generated before this part
        self.prompt = prompt  # the first engine's prompt count: charged once
        self.usage: dict[str, Any] | None = None  # the whole call's, once the final chunk came

    def rewrite(self, chunk: bytes) -> bytes:
        if self._swaps is None:
            chunk = self._first(chunk)
        for theirs, ours in self._swaps or ():
            chunk = chunk.replace(theirs, ours)
        if FINAL_EVENT in chunk:
            chunk = self._final(chunk)
        return chunk

    def _first(self, chunk: bytes) -> bytes:
        kept: list[bytes] = []
        for event in chunk.split(b"\n\n"):
            parsed = _event(event)
            if parsed is None:
                kept.append(event)
                continue
            if self._swaps is None:
                self._swaps = self._learn(parsed)
            if not _role_only(parsed):
                kept.append(event)
        return b"\n\n".join(kept)

    def _learn(self, parsed: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        swaps: list[tuple[bytes, bytes]] = []
        theirs_id, theirs_created = parsed.get("id"), parsed.get("created")
        if isinstance(theirs_id, str) and self._id and theirs_id != self._id:
            swaps.append((_marker("id", theirs_id), _marker("id", self._id)))
        if isinstance(theirs_created, int) and self._created and theirs_created != self._created:
            swaps.append((_marker("created", theirs_created), _marker("created", self._created)))
        return swaps

    def _final(self, chunk: bytes) -> bytes:
        """Rewrite the usage-only final chunk: what the whole call is charged, and that it
        was continued."""
        at = chunk.find(FINAL_EVENT)
        start = chunk.rfind(b"data: ", 0, at)
        stop = chunk.find(b"\n\n", at)
        parsed = _event(chunk[start:stop]) if start >= 0 and stop >= 0 else None
        usage = parsed.get("usage") if parsed else None
        if parsed is None or not isinstance(usage, dict):
            return chunk
        prompt = self.prompt or int(usage.get("prompt_tokens") or 0)
        completion = self.done + int(usage.get("completion_tokens") or 0)
        self.usage = {
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "completion_tokens": completion,
        }
        parsed.update(usage=self.usage, caipi={"continued": self.continued})
        return chunk[:start] + b"data: " + orjson.dumps(parsed) + chunk[stop:]


def _event(event: bytes) -> dict[str, Any] | None:
    at = event.find(b"data: {")
    if at < 0:
        return None
    try:
        parsed = orjson.loads(event[at + 6 :])
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _role_only(parsed: dict[str, Any]) -> bool:
    """The opening chunk of a chat stream: a role and no text (``"content": ""``)."""
    choices: list[dict[str, Any]] = parsed.get("choices") or []
    if len(choices) != 1 or choices[0].get("finish_reason"):
        return False
    delta = choices[0].get("delta") or {}
    return {key: value for key, value in delta.items() if value} == {"role": "assistant"}


def _marker(name: str, value: str | int) -> bytes:
    return b'"' + name.encode() + b'":' + orjson.dumps(value) + b","
