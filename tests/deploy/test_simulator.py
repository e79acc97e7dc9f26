"""The vLLM simulator behaves like vLLM's OpenAI-compatible server, over real HTTP."""

from __future__ import annotations

import base64
import math
import struct
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from openai import OpenAI

from deploy.simulator.config import SimulatorConfig
from deploy.simulator.engine import Engine, Sequence
from deploy.simulator.text import apply_stop, count_tokens, embed, generate_pieces
from tests.support.clock import ManualClock, wait_until
from tests.support.simulator import SimulatorHandle, running_simulator

CHAT = "/v1/chat/completions"
HELLO = [{"role": "user", "content": "Explain the central limit theorem."}]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorHandle]:
    """One fast simulator shared by the tests that need no special options."""
    with running_simulator(model="sim-model", ttft=0.005, tpot=0.001, output_tokens=12) as handle:
        yield handle


@pytest.fixture
def http(sim: SimulatorHandle) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


def sse_events(response: httpx.Response) -> list[Any]:
    """Decode an SSE body into JSON chunks, keeping the closing "[DONE]" as a string."""
    events: list[Any] = []
    for line in response.iter_lines():
        if not line:
            continue
        assert line.startswith("data: "), line
        payload = line.removeprefix("data: ")
        events.append(payload if payload == "[DONE]" else orjson.loads(payload))
    return events


def metric(text: str, name: str, **labels: str) -> float:
    """Return the value of the first sample called ``name`` carrying ``labels``."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def stream_chat(client: httpx.Client, **body: Any) -> list[Any]:
    payload = {"model": "sim-model", "messages": HELLO, "stream": True, **body}
    with client.stream("POST", CHAT, json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return sse_events(response)


# -- the official client -------------------------------------------------------------


def test_the_openai_client_streams_chat_text(sim: SimulatorHandle) -> None:
    client = OpenAI(base_url=f"{sim.url}/v1", api_key="x")
    stream = client.chat.completions.create(model="sim-model", messages=HELLO, stream=True)
    chunks = list(stream)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert len(text.split()) == 12
    assert text[0].isupper() and text.replace(",", "").replace(".", "").replace(" ", "").isalpha()
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_the_openai_client_gets_a_whole_chat_answer_with_usage(sim: SimulatorHandle) -> None:
    client = OpenAI(base_url=f"{sim.url}/v1", api_key="x")
    answer = client.chat.completions.create(model="sim-model", messages=HELLO, max_tokens=5)
    assert answer.object == "chat.completion"
    assert answer.choices[0].message.role == "assistant"
    assert len(answer.choices[0].message.content.split()) == 5
    assert answer.choices[0].finish_reason == "length"
    assert answer.usage.completion_tokens == 5
    assert answer.usage.prompt_tokens == count_tokens(HELLO[0]["content"]) + 6
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 5


def test_the_openai_client_reads_completions_and_embeddings(sim: SimulatorHandle) -> None:
    client = OpenAI(base_url=f"{sim.url}/v1", api_key="x")
    completion = client.completions.create(model="sim-model", prompt="Once upon", max_tokens=4)
    assert completion.object == "text_completion"
    assert len(completion.choices[0].text.split()) == 4
    # The client asks for base64 by default and decodes it itself.
    vectors = client.embeddings.create(model="sim-model", input=["a cat", "a dog"]).data
    assert [len(item.embedding) for item in vectors] == [384, 384]
    assert math.isclose(sum(v * v for v in vectors[0].embedding), 1.0, rel_tol=1e-5)


# -- streaming shapes ----------------------------------------------------------------


def test_streaming_chat_ends_with_a_usage_chunk_when_asked(http: httpx.Client) -> None:
    events = stream_chat(http, stream_options={"include_usage": True})
    assert events[-1] == "[DONE]"
    usage_chunk, last_token = events[-2], events[-3]
    assert usage_chunk["object"] == "chat.completion.chunk"
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == 12
    assert usage_chunk["usage"]["total_tokens"] == sum(
        usage_chunk["usage"][key] for key in ("prompt_tokens", "completion_tokens")
    )
    assert last_token["choices"][0]["finish_reason"] == "stop"
    assert len({event["id"] for event in events[:-1]}) == 1


def test_streaming_chat_sends_one_chunk_per_token_after_the_role(http: httpx.Client) -> None:
    events = stream_chat(http)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    tokens = events[1:-1]
    assert len(tokens) == 12
    assert all("usage" not in event for event in tokens)
    assert [event["choices"][0]["finish_reason"] for event in tokens[:-1]] == [None] * 11


def test_stream_interval_groups_tokens_into_fewer_chunks() -> None:
    with (
        running_simulator(ttft=0.005, tpot=0.001, output_tokens=10, stream_interval=4) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as client,
    ):
        events = stream_chat(client)
    contents = [event["choices"][0]["delta"]["content"] for event in events[1:-1]]
    # The first token goes out alone, then groups of four, then the remainder.
    assert [len(text.split()) for text in contents] == [1, 4, 4, 1]


def test_streaming_completions_use_text_completion_chunks(http: httpx.Client) -> None:
    body = {"prompt": "Hello", "stream": True, "stream_options": {"include_usage": True}}
    with http.stream("POST", "/v1/completions", json=body) as response:
        events = sse_events(response)
    assert {event["object"] for event in events[:-1]} == {"text_completion"}
    assert "".join(event["choices"][0]["text"] for event in events[:-2])
    assert events[-2]["usage"]["prompt_tokens"] == 1


# -- answer content ------------------------------------------------------------------


def test_the_same_prompt_gets_the_same_answer(http: httpx.Client) -> None:
    def answer(content: str) -> str:
        body = {"messages": [{"role": "user", "content": content}]}
        return http.post(CHAT, json=body).json()["choices"][0]["message"]["content"]

    assert answer("What is entropy?") == answer("What is entropy?")
    assert answer("What is entropy?") != answer("What is enthalpy?")


def test_max_completion_tokens_caps_the_answer(http: httpx.Client) -> None:
    body = {"messages": HELLO, "max_completion_tokens": 3}
    answer = http.post(CHAT, json=body).json()
    assert answer["usage"]["completion_tokens"] == 3
    assert answer["choices"][0]["finish_reason"] == "length"


def test_a_stop_string_cuts_the_answer_before_it() -> None:
    pieces = ("The", " proof", " shows", " a", " key", " idea.")
    assert apply_stop(pieces, ("shows",)) == (("The", " proof", " "), "shows")
    assert apply_stop(pieces, ("absent",)) == (pieces, None)


def test_a_stop_string_is_reported_as_the_stop_reason(http: httpx.Client) -> None:
    full = http.post(CHAT, json={"messages": HELLO}).json()["choices"][0]["message"]["content"]
    stop = full.split()[2]
    answer = http.post(CHAT, json={"messages": HELLO, "stop": [stop]}).json()["choices"][0]
    assert answer["message"]["content"] == full[: full.index(stop)]
    assert (answer["finish_reason"], answer["stop_reason"]) == ("stop", stop)


def test_generated_text_is_deterministic_per_seed() -> None:
    assert generate_pieces(1, "prompt", 20) == generate_pieces(1, "prompt", 20)
    assert generate_pieces(1, "prompt", 20) != generate_pieces(2, "prompt", 20)


# -- embeddings ----------------------------------------------------------------------


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_embeddings_are_deterministic_unit_vectors(http: httpx.Client) -> None:
    body = {"input": ["the mean of a sample", "the mean of a sample"], "encoding_format": "float"}
    answer = http.post("/v1/embeddings", json=body).json()
    first, second = (item["embedding"] for item in answer["data"])
    assert first == second
    assert math.isclose(cosine(first, first), 1.0, rel_tol=1e-9)
    assert answer["usage"]["prompt_tokens"] == 10
    assert answer["object"] == "list" and answer["data"][1]["index"] == 1


def test_similar_texts_get_closer_embeddings_than_unrelated_ones() -> None:
    base = embed("the variance of a random sample", 384)
    similar = embed("the variance of the sample", 384)
    unrelated = embed("photosynthesis in green plants", 384)
    assert cosine(base, similar) > 0.6 > 0.3 > cosine(base, unrelated)


def test_embeddings_accept_base64_and_fewer_dimensions(http: httpx.Client) -> None:
    body = {"input": "a cat", "encoding_format": "base64", "dimensions": 8}
    packed = http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    vector = struct.unpack("<8f", base64.b64decode(packed))
    assert math.isclose(sum(v * v for v in vector), 1.0, rel_tol=1e-5)


def test_rerank_scores_documents_by_the_share_of_the_query_words_they_contain(
    http: httpx.Client,
) -> None:
    documents = ["Gradient descent steps downhill.", "Rosenblatt invented the perceptron.", "x"]
    body = {"model": "sim-model", "query": "Who invented the perceptron?", "documents": documents}
    answer = http.post("/v1/rerank", json=body).json()
    assert [r["index"] for r in answer["results"]] == [1, 0, 2]
    assert answer["results"][0]["relevance_score"] == 0.75  # invented, the, perceptron of 4
    assert answer["results"][0]["document"] == {"text": documents[1]}
    assert answer["usage"]["total_tokens"] > 0
    top = http.post("/v1/rerank", json={**body, "top_n": 1}).json()["results"]
    assert [r["index"] for r in top] == [1]


def test_rerank_refuses_a_body_without_documents(http: httpx.Client) -> None:
    answer = http.post("/v1/rerank", json={"model": "sim-model", "query": "q"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "documents"


# -- models and metrics --------------------------------------------------------------


def test_models_lists_every_served_name() -> None:
    with running_simulator(model="org/big-model", served_model_name=["big", "alias"]) as sim:
        cards = httpx.get(f"{sim.url}/v1/models").json()["data"]
        chat = httpx.post(
            f"{sim.url}{CHAT}", json={"model": "alias", "messages": HELLO, "max_tokens": 1}
        )
    assert [card["id"] for card in cards] == ["big", "alias"]
    assert cards[0]["root"] == "org/big-model" and cards[0]["owned_by"] == "vllm"
    assert chat.json()["model"] == "big"


def test_metrics_use_vllm_names_and_the_model_name_label(http: httpx.Client) -> None:
    http.post(CHAT, json={"messages": HELLO})
    text = http.get("/metrics").text
    for gauge in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc"):
        assert metric(text, f"vllm:{gauge}", model_name="sim-model") == 0
    for series in ("time_to_first_token", "e2e_request_latency", "request_queue_time"):
        assert metric(text, f"vllm:{series}_seconds_count", model_name="sim-model") >= 1
    assert metric(text, "vllm:prompt_tokens_total", model_name="sim-model") > 0
    assert metric(text, "vllm:generation_tokens_total", model_name="sim-model") >= 12
    assert metric(text, "vllm:request_success_total", finished_reason="stop") >= 1
    assert "vllm:gpu_cache_usage_perc" not in text


def test_legacy_metrics_export_the_old_kv_cache_gauge() -> None:
    with running_simulator(legacy_metrics=True) as sim:
        text = httpx.get(f"{sim.url}/metrics").text
    assert metric(text, "vllm:gpu_cache_usage_perc", model_name="sim-model") == 0
    assert "vllm:kv_cache_usage_perc" not in text


def test_requests_beyond_max_num_seqs_wait_in_the_queue() -> None:
    with (
        running_simulator(max_num_seqs=1, ttft=0.01, tpot=0.01, output_tokens=300) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as client,
    ):
        payload = {"messages": HELLO, "stream": True}
        with client.stream("POST", CHAT, json=payload), client.stream("POST", CHAT, json=payload):
            wait_until(
                lambda: metric(client.get("/metrics").text, "vllm:num_requests_waiting") == 1,
                what="the second request waits",
            )
            text = client.get("/metrics").text
        assert metric(text, "vllm:num_requests_running") == 1
        assert metric(text, "vllm:num_requests_waiting") == 1
        assert metric(text, "vllm:kv_cache_usage_perc") > 0


def test_a_client_disconnect_frees_its_slot() -> None:
    with (
        running_simulator(max_num_seqs=1, ttft=0.005, tpot=0.1, output_tokens=100_000) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as client,
    ):
        payload = {"messages": HELLO, "stream": True}
        with client.stream("POST", CHAT, json=payload) as response:
            next(response.iter_lines())  # a 3-hour stream has started; walk away
        # The only slot is free again: a short call is answered, not queued behind it.
        answer = client.post(CHAT, json={"messages": HELLO, "max_tokens": 2})
        assert answer.status_code == 200
        text = client.get("/metrics").text
    assert metric(text, "vllm:request_success_total", finished_reason="abort") == 1
    assert metric(text, "vllm:num_requests_running") == 0


# -- start-up, failures and refusals -------------------------------------------------


def test_health_is_503_during_the_startup_delay_then_200() -> None:
    with running_simulator(startup_delay=1.5) as sim:
        assert httpx.get(f"{sim.url}/health").status_code == 503
        refused = httpx.post(f"{sim.url}{CHAT}", json={"messages": HELLO})
        assert refused.status_code == 503
        wait_until(
            lambda: httpx.get(f"{sim.url}/health").status_code == 200,
            what="health answers 200 once the startup delay has passed",
        )


def test_the_startup_delay_counts_from_the_processs_launch_not_from_its_imports() -> None:
    # A process that spent 0.5 s before it asks (as its imports would) has 0.5 s behind it.
    code = (
        "import time; time.sleep(0.5)\n"
        "from deploy.simulator.api import seconds_since_launch\n"
        "print(seconds_since_launch())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True)
    assert 0.5 <= float(done.stdout) < 10


def test_error_rate_one_answers_every_request_with_vllms_500() -> None:
    with running_simulator(error_rate=1.0) as sim:
        answer = httpx.post(f"{sim.url}{CHAT}", json={"messages": HELLO})
    assert answer.status_code == 500
    assert answer.json()["error"]["type"] == "InternalServerError"
    assert answer.json()["error"]["code"] == 500


def test_hang_rate_one_never_answers() -> None:
    with running_simulator(hang_rate=1.0) as sim, pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{sim.url}{CHAT}", json={"messages": HELLO}, timeout=0.3)


def test_die_after_ends_the_process_after_that_many_requests() -> None:
    with running_simulator(die_after=2, ttft=0.001, tpot=0.001) as sim:
        for _ in range(2):
            assert httpx.post(f"{sim.url}{CHAT}", json={"messages": HELLO}).status_code == 200
        assert sim.process.wait(timeout=5) == 1


def test_an_api_key_guards_v1_but_not_health() -> None:
    with running_simulator(api_key="sesame") as sim:
        refused = httpx.get(f"{sim.url}/v1/models")
        allowed = httpx.get(f"{sim.url}/v1/models", headers={"Authorization": "Bearer sesame"})
        health = httpx.get(f"{sim.url}/health")
    assert (refused.status_code, refused.json()) == (401, {"error": "Unauthorized"})
    assert allowed.status_code == 200 and health.status_code == 200


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "sim-model"}, "messages"),
        ({"messages": "hello"}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages.0.role"),
        ({"messages": HELLO, "max_tokens": -1}, "max_tokens"),
        ({"messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
        ({"messages": HELLO, "temperature": -0.5}, "temperature"),
        ({"messages": HELLO, "top_p": 0}, "top_p"),
        ({"messages": HELLO, "stream": "yes"}, "stream"),
        ({"messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"messages": HELLO, "max_tokens": 9000}, "max_tokens"),
        ({"messages": HELLO, "n": 2}, "n"),
    ],
)
def test_malformed_chat_requests_get_vllms_400(
    http: httpx.Client, body: dict[str, Any], param: str
) -> None:
    answer = http.post(CHAT, json=body)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert (error["type"], error["code"], error["param"]) == ("BadRequestError", 400, param)
    assert error["message"]


def test_invalid_json_gets_vllms_400(http: httpx.Client) -> None:
    answer = http.post(
        CHAT, content=b'{"messages": [', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "BadRequestError"


def test_a_completion_without_a_prompt_gets_400(http: httpx.Client) -> None:
    answer = http.post("/v1/completions", json={"max_tokens": 3})
    assert (answer.status_code, answer.json()["error"]["param"]) == (400, "prompt")


def test_an_unknown_model_gets_vllms_404(http: httpx.Client) -> None:
    answer = http.post(CHAT, json={"model": "gpt-17", "messages": HELLO})
    assert answer.status_code == 404
    assert answer.json()["error"] == {
        "message": "The model `gpt-17` does not exist.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


def test_sampling_parameters_are_accepted_and_ignored(http: httpx.Client) -> None:
    body = {
        "messages": HELLO,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
        "n": 1,
        "response_format": {"type": "json_object"},
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "presence_penalty": 0.5,
    }
    assert http.post(CHAT, json=body).status_code == 200


# -- the engine on its own -----------------------------------------------------------


def test_output_lengths_follow_the_distribution_within_max_tokens() -> None:
    config = SimulatorConfig(model="m", output_tokens=10, output_dist="uniform")
    engine = Engine(config, ManualClock())
    free = [engine.plan("p", max_tokens=100) for _ in range(200)]
    capped = [engine.plan("p", max_tokens=5) for _ in range(50)]
    forced = engine.plan("p", max_tokens=30, ignore_eos=True)
    assert {len(plan.pieces) for plan in free} <= set(range(1, 20))
    assert len({len(plan.pieces) for plan in free}) > 5
    assert all(len(plan.pieces) <= 5 for plan in capped)
    assert {plan.finish_reason for plan in capped if len(plan.pieces) == 5} == {"length"}
    assert (len(forced.pieces), forced.finish_reason) == (30, "length")


def test_slowdown_stretches_token_time_as_the_batch_fills() -> None:
    clock = ManualClock()
    config = SimulatorConfig(model="m", ttft=0, tpot=0.002, slowdown=1.0, max_num_seqs=4)
    engine = Engine(config, clock)
    finished: list[float] = []

    def sink(seq: Sequence, start: int, end: int) -> None:
        if end == len(seq.pieces):
            finished.append(clock.time())

    started = clock.time()
    for _ in range(4):
        plan = engine.plan("p", max_tokens=20, ignore_eos=True)
        engine.submit(Sequence(1, plan.pieces, plan.finish_reason, None, sink))
    clock.run_until_idle()

    # A full batch doubles the 2 ms token time: 19 gaps of 4 ms after the first token,
    # on the engine's millisecond timer wheel.
    assert len(finished) == 4
    assert max(finished) - started == pytest.approx(19 * 0.004, abs=0.002)
