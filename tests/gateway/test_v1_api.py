"""The /v1 API through caipi.asgi.application (httpx ASGITransport), on a real simulator."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.gateway.conftest import add_model

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Explain entropy."}]}


async def test_it_answers_a_chat_completion_with_the_public_model_name(v1, chat_model):
    response = await v1.post("/v1/chat/completions", json={**CHAT, "max_tokens": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "tutor"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 5
    assert "caipi;dur=" in response.headers["server-timing"]


async def test_it_streams_sse_bytes_ending_with_usage_and_done(v1, chat_model):
    async with v1.stream(
        "POST", "/v1/chat/completions", json={**CHAT, "max_tokens": 4, "stream": True}
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join([chunk async for chunk in response.aiter_bytes()])
    events = [line[6:] for line in raw.split(b"\n") if line.startswith(b"data: ")]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert {c["model"] for c in chunks} == {"tutor"}
    assert chunks[-1]["usage"]["completion_tokens"] == 4


async def test_it_lists_models_the_key_may_use(v1, chat_model):
    response = await v1.get("/v1/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["tutor"]


@pytest.mark.parametrize(
    ("content", "status", "param"),
    [
        (b"{not json", 400, None),
        (b"[1, 2]", 400, None),
        (orjson.dumps({**CHAT, "model": "nope"}), 404, "model"),
        (orjson.dumps({**CHAT, "max_tokens": -1}), 400, "max_tokens"),
        (orjson.dumps({**CHAT, "temperature": "hot"}), 400, "temperature"),
        (orjson.dumps({**CHAT, "stream": "yes"}), 400, "stream"),
        (orjson.dumps({**CHAT, "messages": []}), 400, "messages"),
        (orjson.dumps({"model": "tutor", "input": 3}), 400, "messages"),
    ],
)
async def test_bad_input_is_refused_in_openai_shape_and_nothing_goes_upstream(
    v1, chat_model, sent_upstream, content, status, param
):
    response = await v1.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["code"]
    assert error["param"] == param
    assert sent_upstream() == 0


@pytest.fixture
def openai_client(live_gateway, api_key, shared_simulator):
    from openai import OpenAI

    add_model("tutor", shared_simulator.url)
    add_model("writer", shared_simulator.url, kind="completion")
    add_model("embedder", shared_simulator.url, kind="embedding")
    with OpenAI(base_url=f"{live_gateway.url}/v1", api_key=api_key, max_retries=0) as v1:
        yield v1


def test_the_official_openai_client_works_for_every_api(openai_client):
    answer = openai_client.chat.completions.create(
        model="tutor", messages=[{"role": "user", "content": "Hi"}], max_tokens=3, seed=1
    )
    assert answer.model == "tutor" and answer.usage.completion_tokens == 3
    stream = openai_client.chat.completions.create(
        model="tutor",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=3,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage.completion_tokens == 3
    completion = openai_client.completions.create(model="writer", prompt="Once", max_tokens=2)
    assert completion.model == "writer" and completion.choices[0].text
    vectors = openai_client.embeddings.create(model="embedder", input=["a", "b"])
    assert len(vectors.data) == 2 and vectors.model == "embedder"
    assert {m.id for m in openai_client.models.list()} == {"tutor", "writer", "embedder"}


def test_the_openai_client_sees_refusals_as_its_own_errors(openai_client, live_gateway):
    import openai

    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.BadRequestError):
        openai_client.embeddings.create(model="tutor", input="not a chat call")
    anonymous = openai.OpenAI(
        base_url=f"{live_gateway.url}/v1", api_key="caipi-wrong", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        anonymous.models.list()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer caipi-aaaaaaaa-" + "x" * 40}, {"Authorization": "Basic abc"}],
)
async def test_a_missing_or_invalid_key_is_refused_before_anything_else(
    v1, chat_model, sent_upstream, headers
):
    v1.headers.pop("Authorization")
    response = await v1.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert sent_upstream() == 0


async def test_a_too_large_body_is_refused_with_413(v1, chat_model, sent_upstream, settings):
    settings.GATEWAY_MAX_BODY_BYTES = 2048
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 4096}]}
    response = await v1.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert sent_upstream() == 0


async def test_a_key_limited_to_other_models_cannot_use_this_one(v1, chat_model, sent_upstream):
    from caipi.governance.apikeys import apikey_cache_clear
    from caipi.governance.models import ApiKey

    await ApiKey.objects.all().aupdate(allowed_models=["other"])
    apikey_cache_clear()
    response = await v1.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 403
    assert (await v1.get("/v1/models")).json()["data"] == []
    assert sent_upstream() == 0


async def test_unknown_paths_get_404_in_openai_shape(v1):
    response = await v1.get("/v1/assistants")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"


def test_v1_rerank_is_relayed_to_a_rerank_model_and_refused_for_others(
    live_gateway, api_key, shared_simulator
):
    add_model("reranker", shared_simulator.url, kind="rerank")
    add_model("tutor", shared_simulator.url)
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {
        "model": "reranker",
        "query": "Who invented the perceptron?",
        "documents": ["Gradient descent steps downhill.", "Rosenblatt invented the perceptron."],
    }
    with httpx.Client(base_url=live_gateway.url, headers=headers, timeout=10) as client:
        answer = client.post("/v1/rerank", json=body)
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "reranker"
        assert [r["index"] for r in answer.json()["results"]] == [1, 0]
        wrong_kind = client.post("/v1/rerank", json={**body, "model": "tutor"})
        no_documents = client.post("/v1/rerank", json={**body, "documents": []})
    assert wrong_kind.status_code == 400 and wrong_kind.json()["error"]["param"] == "model"
    assert no_documents.status_code == 400
    assert no_documents.json()["error"]["param"] == "documents"


@pytest.mark.parametrize("host", ["evil.example", "attacker.test:8000", ""])
async def test_a_foreign_host_header_is_refused_like_the_rest_of_the_site(
    v1, chat_model, sent_upstream, host
):
    response = await v1.post("/v1/chat/completions", json=CHAT, headers={"Host": host})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_host"
    assert (await v1.get("/v1/models", headers={"Host": host})).status_code == 400
    assert sent_upstream() == 0


async def test_an_allowed_host_with_a_port_is_served(v1, chat_model, settings):
    settings.ALLOWED_HOSTS = ["caipi.uni.example"]
    response = await v1.get("/v1/models", headers={"Host": "caipi.uni.example:8443"})
    assert response.status_code == 200
