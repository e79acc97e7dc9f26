"""A budget can never be overspent, by any request (issue 9, item 1).

Erin's key draws on a 500-token daily limit counted in the real test Redis; the engine is
the vLLM simulator, which counts tokens its own way (every punctuation mark or emoji is a
token) and offers vLLM's ``/tokenize``.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis
from asgiref.sync import sync_to_async

from caipi.core.redis import reset_clients
from caipi.gateway import budget
from caipi.gateway.validation import CHAT, COMPLETIONS
from caipi.governance.limits import LIMITS
from caipi.governance.models import QuotaLimit
from deploy.simulator.text import count_chat_tokens
from tests.gateway.conftest import add_model
from tests.support.simulator import running_simulator

pytestmark = pytest.mark.redis

BUDGET = 500
ENGLISH = (
    "Entropy measures how uncertain we are about the outcome of a random variable, "
    "and it is largest when every outcome is equally likely. "
) * 8  # about 1,200 bytes, about 200 of the simulator's tokens

ADVERSARIAL = {
    "punctuation": "!?.,;:-" * 260,
    "emoji": "\U0001f525\U0001f680\U0001f9e0" * 300,
    "german": "Größenordnungsabschätzung über Übungsaufgaben, äußerst schwierig. " * 20,
    "code": "def f(x):\n    return {k: [v, (x, k)] for k, v in x.items()}\n" * 20,
}


@pytest.fixture
def on_redis(redis_url: str, settings) -> str:
    settings.REDIS_URL = redis_url
    reset_clients()
    yield redis_url
    reset_clients()


@pytest.fixture
def erin_budget(api_user, on_redis: str) -> QuotaLimit:
    LIMITS.clear()
    limit = QuotaLimit.objects.create(
        scope="user", user=api_user, metric="tokens", window="day", size=BUDGET
    )
    yield limit
    LIMITS.clear()


def _spent(redis_url: str, limit: QuotaLimit) -> int:
    client = redis.Redis.from_url(redis_url)
    keys = client.keys(f"caipi:q:{limit.pk}:*")
    return sum(int(client.get(key) or 0) for key in keys)


def _chat(content: str, **fields: object) -> dict[str, object]:
    return {"model": "tutor", "messages": [{"role": "user", "content": content}], **fields}


async def test_punctuation_that_outnumbers_its_bytes_estimate_is_refused_before_the_engine(
    v1, chat_model, erin_budget, on_redis, sent_upstream
):
    # 1,820 punctuation marks are 1,826 tokens to the engine: the old guess (bytes / 4)
    # admitted this call against a 500-token budget and then charged all of it.
    response = await v1.post("/v1/chat/completions", json=_chat("!?.,;:-" * 260, max_tokens=1))
    assert response.status_code == 429, response.text
    assert "Quota exceeded" in response.json()["error"]["message"]
    assert sent_upstream() == 0
    assert await sync_to_async(_spent)(on_redis, erin_budget) == 0


async def test_adversarial_calls_at_once_never_push_the_counter_over_its_limit(
    v1, chat_model, erin_budget, on_redis
):
    bodies = [_chat(text, max_tokens=1) for text in ADVERSARIAL.values()]
    bodies += [_chat(text[:300], max_tokens=5) for text in ADVERSARIAL.values()]
    bodies += [
        _chat("Hi", max_tokens=16_777_216),
        _chat("Hi", n=128, max_tokens=10),
        _chat("Hi"),  # no max_tokens: the default is reserved and sent upstream
        _chat(ENGLISH, max_tokens=40),
    ]
    bodies *= 3
    answers = await asyncio.gather(*(v1.post("/v1/chat/completions", json=b) for b in bodies))
    statuses = {response.status_code for response in answers}
    assert statuses <= {200, 400, 429}, [r.text for r in answers if r.status_code >= 500]
    assert 200 in statuses and 429 in statuses
    assert 0 < await sync_to_async(_spent)(on_redis, erin_budget) <= BUDGET


async def test_a_call_whose_loose_bound_does_not_fit_is_admitted_on_the_engines_own_count(
    v1, chat_model, erin_budget, on_redis
):
    # The bound (about 1,300 bytes) exceeds the budget; /tokenize says about 210 tokens.
    response = await v1.post("/v1/chat/completions", json=_chat(ENGLISH, max_tokens=40))
    assert response.status_code == 200, response.text
    usage = response.json()["usage"]
    assert usage["prompt_tokens"] == count_chat_tokens([ENGLISH])
    spent = await sync_to_async(_spent)(on_redis, erin_budget)
    assert spent == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.fixture
def engine_without_tokenize(transactional_db):
    with running_simulator(model="sim-model", ttft=0.01, tpot=0.001, no_tokenize=True) as sim:
        add_model("tutor", sim.url)
        yield sim


async def test_without_the_engines_count_the_bound_alone_decides_and_refuses(
    v1, engine_without_tokenize, erin_budget, on_redis
):
    response = await v1.post("/v1/chat/completions", json=_chat(ENGLISH, max_tokens=40))
    assert response.status_code == 429, response.text
    small = await v1.post("/v1/chat/completions", json=_chat("Explain entropy.", max_tokens=5))
    assert small.status_code == 200, small.text


async def test_a_call_without_max_tokens_is_capped_to_what_was_reserved(v1, chat_model, settings):
    settings.GATEWAY_DEFAULT_MAX_TOKENS = 7  # the simulator would otherwise say 64 words
    response = await v1.post("/v1/chat/completions", json=_chat("Explain entropy."))
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 7


async def test_absurd_choice_counts_and_lengths_are_refused_as_bad_input(v1, chat_model):
    for fields, param in (({"n": 129}, "n"), ({"max_tokens": 2**40}, "max_tokens")):
        response = await v1.post("/v1/chat/completions", json=_chat("Hi", **fields))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param


@pytest.mark.parametrize("text", [*ADVERSARIAL.values(), ENGLISH, "", "a"])
def test_the_prompt_bound_is_never_below_the_engines_count(text):
    body = _chat(text)
    bound = budget.prompt_bound(CHAT, body, orjson.dumps(body))
    assert bound >= count_chat_tokens([text])
    assert bound >= len(text.encode())


def test_every_choice_and_every_prompt_is_counted():
    assert budget.completion_bound(CHAT, {"n": 4}, 100) == 400
    assert budget.completion_bound(COMPLETIONS, {"n": 2, "best_of": 5}, 10) == 50
    assert budget.completion_bound(COMPLETIONS, {"prompt": ["a", "b", "c"]}, 10) == 30
    assert budget.completion_bound(COMPLETIONS, {"prompt": [1, 2, 3]}, 10) == 10
