"""The real small model (SmolLM2-135M on llama.cpp, CPU) answers through the local launcher.

Slow-ish (a few seconds to load the model) and needs the `model` extra; skipped otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from deploy.engines import LlamaCppEngine
from deploy.launchers.local import LocalEngineProcess, launch

ENGINE = LlamaCppEngine(n_ctx=1024)
AVAILABILITY = ENGINE.availability()

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(
        not AVAILABILITY, reason=f"needs the real small model: {AVAILABILITY.reason}"
    ),
]

# At least three words of two letters or more: an answer, not a token soup.
WORDS = re.compile(r"[A-Za-z]{2,}(?:\W+[A-Za-z]{2,}){2,}")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEngineProcess]:
    log_dir: Path = tmp_path_factory.mktemp("engine-logs")
    with launch(ENGINE, log_dir=log_dir, timeout=90) as running:
        yield running


@pytest.fixture
def client(small_model: LocalEngineProcess) -> OpenAI:
    return OpenAI(base_url=small_model.openai_base_url, api_key="unused", timeout=60)


def test_the_small_model_lists_itself_under_its_served_name(
    small_model: LocalEngineProcess,
) -> None:
    response = httpx.get(f"{small_model.openai_base_url}/models", timeout=10)

    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == [ENGINE.served_model_name]


def test_the_small_model_streams_a_real_chat_answer_through_the_openai_client(
    client: OpenAI,
) -> None:
    stream = client.chat.completions.create(
        model=ENGINE.served_model_name,
        messages=[{"role": "user", "content": "What is the capital of France? One sentence."}],
        max_tokens=48,
        temperature=0,
        stream=True,
    )

    pieces: list[str] = []
    finish_reason = None
    for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish_reason = choice.finish_reason or finish_reason
    text = "".join(pieces)

    assert text.strip(), "the stream carried no text"
    assert finish_reason in {"stop", "length"}
    assert WORDS.search(text), f"not words: {text!r}"
