"""The most a call can cost, known before it is sent: what the quota reserves.

A budget holds only if the reservation is an upper bound of what the engine will count,
because settlement never charges more than was reserved (``quotas.quota_settle``).

Prompt tokens (``prompt_bound``): no tokenizer makes more tokens than the rendered prompt
has bytes, plus the special tokens its template adds. Every token of a byte-level BPE
(GPT-2, Llama 3, Qwen, Mistral's tekken) covers at least one byte; SentencePiece pieces
cover at least one character or, by byte fallback, one byte each. The upstream JSON body
contains every message's text JSON-escaped, so it is never shorter than that text in
UTF-8; what a chat template adds is bounded by ``PER_MESSAGE`` tokens per message and
``PER_CALL`` once (role markers, BOS, a default system prompt and date lines). Tool
definitions may be re-indented by the template, so their JSON is counted twice more.
Images and audio are not bounded this way (their tokens do not follow from bytes); the
cap at settlement still holds the budget for them.

The bound is loose (English runs about four bytes a token), so a call whose bound does not
fit the remaining budget is not refused at once: ``prompt_count`` asks the engine for its
own count (vLLM's ``/tokenize``, through ``deploy.vllm_client``) and the reservation is
tried again with that exact number. Ordinary calls, far from their limits, never pay for
the extra round trip. An endpoint that does not offer ``/tokenize`` is remembered for
``NO_TOKENIZE_SECONDS`` and its calls keep the bound.

Completion tokens (``completion_bound``): ``max_tokens`` (capped to
GATEWAY_DEFAULT_MAX_TOKENS by ``call_prepare`` when the client sends none) for each choice
the engine generates — ``n``, or ``best_of`` when larger, for each prompt of a
``/v1/completions`` call.

A call its client abandons before the answer came is charged ``completion_ran``: what the
engine can have generated until the connection dropped (it stops then), at
GATEWAY_MAX_DECODE_RATE tokens a second per sequence — a bound, since an engine does not
report what it generated for a call it aborted.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import orjson
from django.conf import settings

from caipi.gateway.catalog import catalog
from caipi.gateway.validation import CHAT, COMPLETIONS, EMBEDDINGS
from deploy import vllm_client
from deploy.router import choose_endpoint
from deploy.selectors import ModelRoute

logger = logging.getLogger(__name__)

PER_MESSAGE = 16
PER_CALL = 128
NO_TOKENIZE_SECONDS = 300.0

# endpoint id -> until when it is known not to offer /tokenize (monotonic seconds)
_no_tokenize: dict[int, float] = {}


def prompt_bound(path: str, body: dict[str, Any], upstream: bytes) -> int:
    """Prompt tokens no tokenizer can exceed for this call (see the module docstring)."""
    bound = len(upstream) + PER_CALL
    if path == CHAT:
        bound += PER_MESSAGE * len(body.get("messages") or ())
        tools = body.get("tools") or body.get("functions")
        if tools:
            bound += 2 * len(orjson.dumps(tools))
    return bound


def prompts_in(path: str, body: dict[str, Any]) -> int:
    """How many prompts a call carries: a /v1/completions ``prompt`` may be a list of them."""
    if path != COMPLETIONS:
        return 1
    prompt = body.get("prompt")
    if isinstance(prompt, list) and prompt and not isinstance(prompt[0], int):
        return len(prompt)
    return 1


def choices(path: str, body: dict[str, Any]) -> int:
    """Sequences the engine generates: ``n`` (or ``best_of``, when larger) for each prompt."""
    return max(int(body.get("n") or 1), int(body.get("best_of") or 1)) * prompts_in(path, body)


def completion_bound(path: str, body: dict[str, Any], max_tokens: int) -> int:
    """Completion tokens the engine may generate: ``max_tokens`` for each choice."""
    if path not in (CHAT, COMPLETIONS):  # embeddings and rerank generate nothing
        return 0
    return max_tokens * choices(path, body)


def completion_ran(seconds: float, sequences: int, most: int) -> int:
    """Completion tokens an engine can have generated in ``seconds`` for a call it then
    aborted (no engine reports those): GATEWAY_MAX_DECODE_RATE tokens a second for each
    sequence, at most ``most`` (the call's reservation)."""
    rate = settings.GATEWAY_MAX_DECODE_RATE
    return min(most, math.ceil(max(seconds, 0.0) * rate) * max(sequences, 1))


def tokenize_request(path: str, body: dict[str, Any]) -> bytes | None:
    """The ``/tokenize`` body that counts this call's prompt as the engine will, or None
    when the engine cannot count it in one request (several prompts, token ids)."""
    request: dict[str, Any] = {"model": body["model"]}
    if path == CHAT:
        request["messages"] = body["messages"]
        request["add_generation_prompt"] = True
        for name in ("tools", "chat_template", "chat_template_kwargs"):
            if body.get(name) is not None:
                request[name] = body[name]
        return orjson.dumps(request)
    if path not in (COMPLETIONS, EMBEDDINGS):
        return None  # rerank: several texts, no single prompt to count
    prompt = body.get("prompt" if path == COMPLETIONS else "input")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        return None
    request["prompt"] = prompt
    return orjson.dumps(request)


async def prompt_count(model: ModelRoute, path: str, body: dict[str, Any]) -> int | None:
    """The engine's own count of this call's prompt tokens, or None when no endpoint of
    the model can tell (none ready, none offers ``/tokenize``, or the count failed)."""
    request = tokenize_request(path, body)
    if request is None:
        return None
    now = time.monotonic()
    candidates = [
        c for c in catalog().candidates(model) if _no_tokenize.get(c.endpoint_id, 0.0) < now
    ]
    chosen = choose_endpoint(candidates)
    if chosen is None:
        return None
    endpoint = catalog().endpoint(model, chosen.endpoint_id)
    try:
        count = await vllm_client.count_tokens(
            endpoint.base_url, endpoint.token, request, within=settings.GATEWAY_CONNECT_TIMEOUT
        )
    except vllm_client.UpstreamError as exc:
        if exc.status in (404, 405):
            _no_tokenize[endpoint.id] = now + NO_TOKENIZE_SECONDS
        logger.info("endpoint %s could not count a prompt: %s", endpoint.id, exc)
        return None
    return count
