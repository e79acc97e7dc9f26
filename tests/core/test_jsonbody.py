"""JSON bodies are parsed with their nesting bounded: deep JSON is a 400, never a 500."""

from __future__ import annotations

import orjson
import pytest

from caipi.core.jsonbody import MAX_DEPTH, JsonBodyError, json_depth_exceeds, json_loads_bounded


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_json_as_deep_as_the_limit_is_parsed():
    assert json_loads_bounded(_nested(MAX_DEPTH)) is not None
    assert json_loads_bounded(b'{"a": [1, {"b": "[[[[[[["}]}') == {"a": [1, {"b": "[[[[[[["}]}


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 254, 1023, 100_000])
def test_json_deeper_than_the_limit_is_refused_with_a_clear_message(depth):
    with pytest.raises(JsonBodyError, match="levels deep"):
        json_loads_bounded(_nested(depth))


def test_broken_json_is_refused_as_not_json():
    with pytest.raises(JsonBodyError, match="not valid JSON"):
        json_loads_bounded(b'{"a": ')


def test_many_brackets_side_by_side_are_not_depth():
    wide = orjson.dumps([[[1]]] * 1000)
    assert len(json_loads_bounded(wide)) == 1000
    assert not json_depth_exceeds(orjson.loads(wide), MAX_DEPTH)


@pytest.mark.parametrize("depth", [65, 100_000])
def test_the_rest_api_answers_deep_json_with_a_400(client, student, depth):
    client.force_login(student)
    body = b'{"model": "tutor", "requests": ' + _nested(depth) + b"}"
    response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "levels deep" in response.json()["error"]["message"]


@pytest.mark.parametrize("depth", [65, 254, 1023])
def test_the_course_chat_answers_deep_json_with_a_400(client, student, course, depth):
    client.force_login(student)
    body = b'{"course_id": %d, "messages": ' % course.pk + _nested(depth) + b"}"
    response = client.post("/api/chat/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "levels deep" in response.json()["error"]["message"]
