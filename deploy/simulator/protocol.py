"""Request validation with vLLM's rules and its error shape.

Errors are raised as ``ApiError`` and rendered as vLLM renders them::

    {"error": {"message": "...", "type": "BadRequestError", "param": null, "code": 400}}

(``code`` is the HTTP status as an integer, as in vLLM, not OpenAI's string code.)
Sampling parameters the simulator does not model (temperature, top_p, seed, tools,
response_format, logprobs, ...) are type-checked like vLLM does and otherwise ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from deploy.simulator.config import SimulatorConfig
from deploy.simulator.text import (
    CHAT_TOKENS_PER_MESSAGE,
    CHAT_TOKENS_PRIMING,
    count_chat_tokens,
    count_tokens,
    tokenize,
)

ERROR_TYPES = {
    400: "BadRequestError",
    401: "UnauthorizedError",
    404: "NotFoundError",
    413: "RequestEntityTooLargeError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


class ApiError(Exception):
    """A refusal with its HTTP status; ``body()`` gives vLLM's error JSON."""

    def __init__(self, status: int, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param

    def body(self) -> bytes:
        """Return the response body in vLLM's ``ErrorResponse`` shape."""
        error = {
            "message": self.message,
            "type": ERROR_TYPES.get(self.status, "BadRequestError"),
            "param": self.param,
            "code": self.status,
        }
        return orjson.dumps({"error": error})


def bad_request(message: str, param: str | None = None) -> ApiError:
    """Return a 400 ``ApiError`` (a helper so call sites read as the rule they check)."""
    return ApiError(400, message, param=param)


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """A validated chat or completion request; ``max_tokens`` is already resolved."""

    kind: Literal["chat", "completion"]
    prompt: str
    prompt_tokens: int
    max_tokens: int
    min_tokens: int
    ignore_eos: bool
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool
    continuous_usage: bool = False
    offset: int = 0  # tokens of the answer already written (continue_final_message)


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """A validated embeddings request, one text per input."""

    inputs: tuple[str, ...]
    token_counts: tuple[int, ...]
    encoding_format: Literal["float", "base64"]
    dimensions: int | None


@dataclass(frozen=True, slots=True)
class RerankRequest:
    """A validated ``/v1/rerank`` request: a query and the documents to score against it."""

    query: str
    documents: tuple[str, ...]
    top_n: int | None
    prompt_tokens: int


def parse_rerank(body: dict[str, Any], config: SimulatorConfig) -> RerankRequest:
    """Validate a ``/v1/rerank`` body (vLLM's Jina/Cohere-style API). Raises ``ApiError``."""
    check_model(body, config)
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise bad_request("Input should be a valid string", "query")
    documents = body.get("documents")
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        raise bad_request("Input should be a valid list of strings", "documents")
    top_n = _typed(body, "top_n", (int,), "a valid integer")
    tokens = sum(count_tokens(query) + count_tokens(d) for d in documents)
    return RerankRequest(
        query=query, documents=tuple(documents), top_n=top_n or None, prompt_tokens=tokens
    )


def parse_json(raw: bytes) -> dict[str, Any]:
    """Decode a request body that must be a JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise bad_request(f"JSON decode error: {error}") from None
    if not isinstance(body, dict):
        raise bad_request("Input should be a valid dictionary or object to extract fields from")
    return body


def check_model(body: dict[str, Any], config: SimulatorConfig) -> None:
    """Refuse a request naming a model this server does not serve (404, like vLLM).

    ``model`` may be omitted: vLLM then uses its first served model.
    """
    model = body.get("model")
    if model is None:
        return
    if not isinstance(model, str):
        raise bad_request("Input should be a valid string", "model")
    if model not in config.served_model_names:
        raise ApiError(404, f"The model `{model}` does not exist.", param="model")


def _typed(body: dict[str, Any], name: str, kinds: tuple[type, ...], label: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    # bool is an int subclass; pydantic (and so vLLM) refuses true as a number.
    if isinstance(value, bool) and bool not in kinds:
        raise bad_request(f"Input should be {label}", name)
    if not isinstance(value, kinds):
        raise bad_request(f"Input should be {label}", name)
    return value


def _check_ranges(body: dict[str, Any]) -> None:
    temperature = _typed(body, "temperature", (int, float), "a valid number")
    if temperature is not None and temperature < 0:
        raise bad_request(f"temperature must be non-negative, got {temperature}.", "temperature")
    top_p = _typed(body, "top_p", (int, float), "a valid number")
    if top_p is not None and not 0 < top_p <= 1:
        raise bad_request(f"top_p must be in (0, 1], got {top_p}.", "top_p")
    for name in ("presence_penalty", "frequency_penalty"):
        value = _typed(body, name, (int, float), "a valid number")
        if value is not None and not -2 <= value <= 2:
            raise bad_request(f"{name} must be in [-2, 2], got {value}.", name)
    _typed(body, "seed", (int,), "a valid integer")
    n = _typed(body, "n", (int,), "a valid integer")
    if n is not None and n != 1:
        raise bad_request("The simulator only serves n=1.", "n")


def _stream_flags(body: dict[str, Any]) -> tuple[bool, bool, bool]:
    stream = bool(_typed(body, "stream", (bool,), "a valid boolean"))
    options = _typed(body, "stream_options", (dict,), "a valid dictionary")
    if options is not None and not stream:
        raise bad_request(
            "Stream options can only be defined when `stream=True`.", "stream_options"
        )
    include_usage = bool(options and options.get("include_usage"))
    # vLLM: usage in every chunk only with include_usage as well.
    continuous = include_usage and bool(options and options.get("continuous_usage_stats"))
    return stream, include_usage, continuous


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        return tuple(stop)
    raise bad_request("Input should be a valid string or a list of strings", "stop")


def _budget(body: dict[str, Any], prompt_tokens: int, config: SimulatorConfig) -> int:
    requested = _typed(body, "max_completion_tokens", (int,), "a valid integer")
    param = "max_completion_tokens"
    if requested is None:
        requested = _typed(body, "max_tokens", (int,), "a valid integer")
        param = "max_tokens"
    limit = config.max_model_len
    if requested is not None and requested < 1:
        raise bad_request(f"max_tokens must be at least 1, got {requested}.", param)
    wanted = prompt_tokens + (requested or 1)
    if prompt_tokens >= limit or wanted > limit:
        raise bad_request(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{wanted} tokens ({prompt_tokens} in the messages, {requested or 1} in the "
            "completion). Please reduce the length of the messages or completion.",
            "messages" if prompt_tokens >= limit else param,
        )
    return requested if requested is not None else limit - prompt_tokens


def _generation(
    kind: Literal["chat", "completion"],
    body: dict[str, Any],
    prompt: str,
    prompt_tokens: int,
    config: SimulatorConfig,
    offset: int = 0,
) -> GenerationRequest:
    _check_ranges(body)
    stream, include_usage, continuous = _stream_flags(body)
    min_tokens = _typed(body, "min_tokens", (int,), "a valid integer") or 0
    if min_tokens < 0:
        raise bad_request(f"min_tokens must be greater than or equal to 0, got {min_tokens}.")
    return GenerationRequest(
        kind=kind,
        prompt=prompt,
        prompt_tokens=prompt_tokens,
        max_tokens=_budget(body, prompt_tokens, config),
        min_tokens=min_tokens,
        ignore_eos=bool(_typed(body, "ignore_eos", (bool,), "a valid boolean")),
        stop=_stop(body),
        stream=stream,
        include_usage=include_usage,
        continuous_usage=continuous,
        offset=offset,
    )


def _message_text(message: Any, index: int) -> str:
    if not isinstance(message, dict):
        raise bad_request("Input should be a valid dictionary", f"messages.{index}")
    if not isinstance(message.get("role"), str):
        raise bad_request("Field required: role", f"messages.{index}.role")
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        texts = [part.get("text") for part in content if isinstance(part, dict)]
        return " ".join(text for text in texts if isinstance(text, str))
    raise bad_request("Input should be a valid string or list", f"messages.{index}.content")


def parse_chat(body: dict[str, Any], config: SimulatorConfig) -> GenerationRequest:
    """Validate a ``/v1/chat/completions`` body. Raises ``ApiError``."""
    check_model(body, config)
    messages = body.get("messages")
    if messages is None:
        raise bad_request("Field required", "messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages must be a non-empty list of messages", "messages")
    contents = [_message_text(message, index) for index, message in enumerate(messages)]
    tokens = count_chat_tokens(contents)
    if not _continues(body, messages):
        return _generation("chat", body, "\n".join(contents), tokens, config)
    # The answer so far is the final message: generate the rest of the answer the earlier
    # messages would have had (one token per word, see text.py), so a continued answer
    # joins up with its beginning as if one engine had written it all.
    offset = len(contents[-1].split())
    return _generation("chat", body, "\n".join(contents[:-1]), tokens, config, offset)


def _continues(body: dict[str, Any], messages: list[Any]) -> bool:
    """vLLM's ``continue_final_message``: the last (assistant) message is an unfinished
    answer to go on with, instead of a new one (which ``add_generation_prompt`` starts)."""
    if not _typed(body, "continue_final_message", (bool,), "a valid boolean"):
        return False
    if _typed(body, "add_generation_prompt", (bool,), "a valid boolean") is not False:
        raise bad_request(
            "Cannot set both `continue_final_message` and `add_generation_prompt` to True."
        )
    if messages[-1].get("role") != "assistant" or len(messages) < 2:
        raise bad_request(
            "continue_final_message needs an assistant message last, after the prompt.",
            "messages",
        )
    return True


def _prompt_of(value: Any, param: str) -> tuple[str, int]:
    """Return (text key, token count) for a prompt given as text or token ids."""
    if isinstance(value, str):
        return value, count_tokens(value)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(item, int) and not isinstance(item, bool) for item in value)
    ):
        return "ids:" + ",".join(map(str, value)), len(value)
    if isinstance(value, list) and len(value) == 1:
        return _prompt_of(value[0], param)
    if isinstance(value, list) and len(value) > 1:
        raise bad_request("The simulator serves one prompt per request.", param)
    raise bad_request("Input should be a string, a list of token ids or a list of one", param)


def parse_completion(body: dict[str, Any], config: SimulatorConfig) -> GenerationRequest:
    """Validate a ``/v1/completions`` body. Raises ``ApiError``."""
    check_model(body, config)
    if body.get("prompt") is None:
        raise bad_request("Field required", "prompt")
    prompt, tokens = _prompt_of(body["prompt"], "prompt")
    return _generation("completion", body, prompt, tokens, config)


def _embedding_inputs(value: Any) -> list[tuple[str, int]]:
    if isinstance(value, str):
        return [(value, count_tokens(value))]
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return [(item, count_tokens(item)) for item in value]
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return [_prompt_of(item, "input") for item in value]
    if isinstance(value, list) and value:
        return [_prompt_of(value, "input")]
    raise bad_request("Input should be a string, a list of strings or token ids", "input")


def parse_embedding(body: dict[str, Any], config: SimulatorConfig) -> EmbeddingRequest:
    """Validate a ``/v1/embeddings`` body. Raises ``ApiError``."""
    check_model(body, config)
    if body.get("input") is None:
        raise bad_request("Field required", "input")
    inputs = _embedding_inputs(body["input"])
    for _, tokens in inputs:
        if tokens > config.max_model_len:
            raise bad_request(
                f"This model's maximum context length is {config.max_model_len} tokens. "
                f"However, you requested {tokens} tokens in the input for embedding "
                "generation. Please reduce the length of the input.",
                "input",
            )
    encoding: Literal["float", "base64"] = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("Input should be 'float' or 'base64'", "encoding_format")
    dimensions = _typed(body, "dimensions", (int,), "a valid integer")
    if dimensions is not None and not 1 <= dimensions <= config.embedding_dim:
        raise bad_request(
            f"dimensions must be between 1 and {config.embedding_dim}, got {dimensions}.",
            "dimensions",
        )
    return EmbeddingRequest(
        inputs=tuple(text for text, _ in inputs),
        token_counts=tuple(tokens for _, tokens in inputs),
        encoding_format=encoding,
        dimensions=dimensions,
    )


def parse_tokenize(body: dict[str, Any], config: SimulatorConfig) -> list[str]:
    """Validate a ``/tokenize`` body (vLLM: a ``prompt``, or chat ``messages``) and return
    its tokens as the simulator counts them for ``usage`` (chat: with the template's
    markers, ``<|...|>`` strings). Raises ``ApiError``."""
    check_model(body, config)
    messages = body.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not messages:
            raise bad_request("messages must be a non-empty list of messages", "messages")
        contents = [_message_text(message, index) for index, message in enumerate(messages)]
        tokens = ["<|start|>"] * CHAT_TOKENS_PRIMING
        for content in contents:
            tokens += ["<|message|>"] * CHAT_TOKENS_PER_MESSAGE + tokenize(content)
        return tokens
    prompt = body.get("prompt")
    if not isinstance(prompt, str):
        raise bad_request("Input should be a valid string", "prompt")
    return tokenize(prompt)
