"""The simulator goes on with an unfinished answer (vLLM's ``continue_final_message``) and
can die in the middle of its streams (``--die-mid-stream``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.simulator import SimulatorHandle, running_simulator

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Explain the central limit theorem."}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    with running_simulator(model="sim-model", ttft=0.001, tpot=0.001, output_tokens=30) as handle:
        yield handle


def answer(sim: SimulatorHandle, messages: list[dict[str, str]], **body: object) -> httpx.Response:
    return httpx.post(f"{sim.url}{CHAT}", json={"messages": messages, **body}, timeout=10)


def test_a_continued_answer_joins_up_with_its_beginning(sim: SimulatorHandle) -> None:
    whole = answer(sim, HELLO).json()["choices"][0]["message"]["content"]
    beginning = " ".join(whole.split()[:11])
    rest = answer(
        sim,
        [*HELLO, {"role": "assistant", "content": beginning}],
        continue_final_message=True,
        add_generation_prompt=False,
    ).json()
    assert beginning + rest["choices"][0]["message"]["content"] == whole
    assert rest["usage"]["completion_tokens"] == 30 - 11


def test_a_continued_answer_is_capped_by_its_max_tokens(sim: SimulatorHandle) -> None:
    rest = answer(
        sim,
        [*HELLO, {"role": "assistant", "content": "The lecture"}],
        continue_final_message=True,
        add_generation_prompt=False,
        max_tokens=5,
    ).json()
    assert rest["usage"]["completion_tokens"] == 5
    assert rest["choices"][0]["finish_reason"] == "length"


def test_continuing_refuses_a_generation_prompt_as_vllm_does(sim: SimulatorHandle) -> None:
    refused = answer(
        sim, [*HELLO, {"role": "assistant", "content": "The"}], continue_final_message=True
    )
    assert refused.status_code == 400
    assert "add_generation_prompt" in refused.json()["error"]["message"]


def test_continuing_needs_an_assistant_message_last(sim: SimulatorHandle) -> None:
    refused = answer(sim, HELLO, continue_final_message=True, add_generation_prompt=False)
    assert refused.status_code == 400
    assert refused.json()["error"]["param"] == "messages"


def test_die_mid_stream_cuts_a_stream_after_that_many_tokens() -> None:
    with running_simulator(die_mid_stream=5, ttft=0.001, tpot=0.02, output_tokens=200) as sim:
        body = {"messages": HELLO, "stream": True}
        received = b""
        with (
            pytest.raises(httpx.RemoteProtocolError),
            httpx.stream("POST", f"{sim.url}{CHAT}", json=body, timeout=10) as response,
        ):
            for data in response.iter_bytes():
                received += data
        assert sim.process.wait(timeout=5) == 1
    assert received.count(b'"content":') >= 5
    assert b"[DONE]" not in received
