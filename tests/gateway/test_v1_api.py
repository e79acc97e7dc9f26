"""The /v1 API through caipi.asgi.application (httpx ASGITransport), on a real simulator."""

from __future__ import annotations

import orjson
import pytest

from tests.gateway.conftest import upstream_requests

CHAT = {"model": "tutor", "messages": [{"role": "user", "content": "Explain entropy."}]}


async def test_it_answers_a_chat_completion_with_the_public_model_name(client, chat_model):
    response = await client.post("/v1/chat/completions", json={**CHAT, "max_tokens": 5})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "tutor"
    assert body["choices"][0]["message"]["content"]
    assert body["usage"]["completion_tokens"] == 5
    assert "caipi;dur=" in response.headers["server-timing"]


async def test_it_streams_sse_bytes_ending_with_usage_and_done(client, chat_model):
    async with client.stream(
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


async def test_it_lists_models_the_key_may_use(client, chat_model):
    response = await client.get("/v1/models")
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
    client, chat_model, simulator, content, status, param
):
    response = await client.post(
        "/v1/chat/completions", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"] and error["type"] and error["code"]
    assert error["param"] == param
    assert upstream_requests(simulator) == 0
