"""Which streams may go on on another endpoint when their engine dies: plain text only."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from caipi.gateway.continuation import continuable, continuation_body
from caipi.gateway.validation import CHAT, COMPLETIONS, EMBEDDINGS

MESSAGES = [{"role": "user", "content": "Hello"}]


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "f"}}]},
        {"logprobs": True, "top_logprobs": 2},
        {"response_format": {"type": "json_object"}},
        {"response_format": "json"},
        {"guided_json": {"type": "object"}},
        {"echo": True},
    ],
)
def test_a_chat_stream_with_more_than_plain_text_is_not_continued(extra: dict[str, Any]) -> None:
    assert not continuable(CHAT, {"messages": MESSAGES, **extra}, 1)


def test_a_plain_chat_stream_with_one_choice_is_continued() -> None:
    assert continuable(CHAT, {"messages": MESSAGES, "response_format": {"type": "text"}}, 1)


def test_a_stream_of_several_choices_is_not_continued() -> None:
    assert not continuable(CHAT, {"messages": MESSAGES, "n": 2}, 2)


def test_a_completion_is_continued_only_from_a_text_prompt() -> None:
    assert continuable(COMPLETIONS, {"prompt": "Once"}, 1)
    assert continuable(COMPLETIONS, {"prompt": ["Once"]}, 1)
    assert not continuable(COMPLETIONS, {"prompt": [1, 2, 3]}, 1)
    assert not continuable(COMPLETIONS, {"prompt": "Once", "logprobs": 1}, 1)
    assert not continuable(EMBEDDINGS, {"input": "Once"}, 1)


def test_a_chat_goes_on_from_the_answer_so_far_as_the_assistants_message() -> None:
    request = {"messages": MESSAGES, "max_completion_tokens": 100, "min_tokens": 20}
    body = orjson.loads(
        continuation_body(request, CHAT, "The lecture", generated=2, tokens_left=98)
    )
    assert body["messages"] == [*MESSAGES, {"role": "assistant", "content": "The lecture"}]
    assert (body["continue_final_message"], body["add_generation_prompt"]) == (True, False)
    assert (body["max_tokens"], body["min_tokens"]) == (98, 18)
    assert "max_completion_tokens" not in body


def test_a_client_prefix_is_extended_not_repeated() -> None:
    messages = [*MESSAGES, {"role": "assistant", "content": "Sure:"}]
    request = {"messages": messages, "continue_final_message": True, "max_tokens": 10}
    body = orjson.loads(continuation_body(request, CHAT, " one", generated=1, tokens_left=9))
    assert body["messages"][-1] == {"role": "assistant", "content": "Sure: one"}


def test_a_completion_goes_on_from_the_prompt_and_the_text_so_far() -> None:
    body = orjson.loads(
        continuation_body(
            {"prompt": ["Once"], "max_tokens": 9}, COMPLETIONS, " upon", generated=1, tokens_left=8
        )
    )
    assert (body["prompt"], body["max_tokens"]) == ("Once upon", 8)
