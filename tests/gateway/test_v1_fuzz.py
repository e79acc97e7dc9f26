"""Fuzzing the /v1 body parser and validator: any bytes give a 4xx or a 2xx, never a 500.

Hypothesis draws raw bytes, JSON of any shape and depth, and OpenAI-looking bodies whose
fields hold values of every type. Bounded (examples, no deadline) so it runs in seconds.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from caipi.core.errors import ApplicationError
from caipi.gateway import budget
from caipi.gateway.validation import CHAT, COMPLETIONS, EMBEDDINGS, check_body, parse_body
from tests.gateway.conftest import add_model

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz tests need hypothesis (dev extra)")
st = hypothesis.strategies
given, settings, HealthCheck = hypothesis.given, hypothesis.settings, hypothesis.HealthCheck

LIMIT = 1_048_576
FIELDS = (
    "model", "messages", "prompt", "input", "stream", "stream_options", "max_tokens",
    "max_completion_tokens", "n", "best_of", "temperature", "top_p", "stop", "seed",
    "presence_penalty", "frequency_penalty", "logprobs", "echo", "tools",
)  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant"]) | scalars},
        optional={"content": st.text(max_size=200) | json_values},
    )
    | json_values,
    max_size=4,
)
openai_bodies = st.fixed_dictionaries(
    {"model": st.just("tutor") | scalars},
    optional={
        **{name: json_values for name in FIELDS if name not in ("model", "messages")},
        "messages": messages,
        "max_tokens": st.integers(min_value=-5, max_value=2**40) | scalars,
        "n": st.integers(min_value=-2, max_value=300) | scalars,
    },
)


def _nested(depth: int) -> bytes:
    return b'{"model":"tutor","messages":' + b"[" * depth + b"]" * depth + b"}"


def _validate(raw: bytes, path: str) -> None:
    """What /v1 does with a body before routing: parse, check, bound, re-serialise."""
    try:
        body = parse_body(raw, limit=LIMIT)
        check_body(path, body)
    except ApplicationError as exc:
        assert 400 <= exc.status < 500, exc
        return
    upstream = orjson.dumps(body)
    assert budget.prompt_bound(path, body, upstream) >= len(upstream)
    assert budget.completion_bound(path, body, 100) >= 0


fuzz = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@fuzz
@given(raw=st.binary(max_size=300), path=st.sampled_from([CHAT, COMPLETIONS, EMBEDDINGS]))
def test_any_bytes_are_parsed_or_refused_with_a_4xx(raw, path):
    _validate(raw, path)


@fuzz
@given(value=json_values, path=st.sampled_from([CHAT, COMPLETIONS, EMBEDDINGS]))
def test_any_json_is_accepted_or_refused_with_a_4xx(value, path):
    _validate(orjson.dumps(value), path)


@fuzz
@given(body=openai_bodies, path=st.sampled_from([CHAT, COMPLETIONS, EMBEDDINGS]))
def test_openai_looking_bodies_with_wrong_types_are_accepted_or_refused_with_a_4xx(body, path):
    _validate(orjson.dumps(body), path)


@fuzz
@given(depth=st.integers(min_value=1, max_value=5000))
def test_any_nesting_depth_is_parsed_or_refused_with_a_4xx(depth):
    _validate(_nested(depth), CHAT)


@pytest.fixture
def gateway_client(live_gateway, api_key, shared_simulator):
    add_model("tutor", shared_simulator.url)
    with httpx.Client(
        base_url=live_gateway.url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
    ) as client:
        yield client


def _post(client: httpx.Client, path: str, content: bytes) -> httpx.Response:
    return client.post(path, content=content, headers={"Content-Type": "application/json"})


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=openai_bodies | json_values, raw=st.binary(max_size=64))
def test_the_served_api_answers_any_body_with_a_4xx_or_a_2xx(gateway_client, body, raw):
    for content in (orjson.dumps(body), raw):
        response = _post(gateway_client, "/v1/chat/completions", content)
        assert response.status_code < 500, (content[:300], response.text[:300])


def test_deeply_nested_json_is_a_clear_400_on_the_served_api(gateway_client):
    for depth in (65, 254, 1023, 100_000):
        response = _post(gateway_client, "/v1/chat/completions", _nested(depth))
        assert response.status_code == 400, (depth, response.text)
        assert "levels deep" in response.json()["error"]["message"]
