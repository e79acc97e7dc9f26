"""The speed benchmark keeps its search courses between runs and measures CPU beside wall."""

import numpy as np
import pytest
from django.conf import settings as django_settings

from rag import lexical
from rag.benchmark import quality, speed
from rag.models import Chunk

SIZE = 300
pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path  # the kept folder: base vectors are saved under it

    def vectors(corpus):  # the corpus's vectors, without embedding 108 passages on the CPU
        rng = np.random.default_rng(1)
        raw = rng.normal(size=(len(corpus.indexed), 384)).astype(np.float32)
        return raw / np.linalg.norm(raw, axis=1, keepdims=True)

    monkeypatch.setattr(speed, "_base_vectors", vectors)
    yield quality.load_corpus(
        budget=django_settings.RAG_CHUNK_TOKENS, overlap=django_settings.RAG_CHUNK_OVERLAP
    )
    lexical.forget_all()  # course ids come back after the rollback; their indexes must not


def test_a_kept_search_course_is_reused_and_an_incomplete_one_rebuilt(corpus):
    course, student, built = speed.search_course(SIZE, corpus)
    assert built and Chunk.objects.filter(course_id=course.pk).count() == SIZE
    kept, kept_student, built_again = speed.search_course(SIZE, corpus)
    assert kept.pk == course.pk and kept_student.pk == student.pk and not built_again
    Chunk.objects.filter(course_id=course.pk).first().delete()  # e.g. an interrupted build
    rebuilt, _, built_again = speed.search_course(SIZE, corpus)
    assert built_again and rebuilt.pk != course.pk
    assert Chunk.objects.filter(course_id=rebuilt.pk).count() == SIZE


def test_search_latency_reports_wall_and_cpu_percentiles_and_a_profile(corpus):
    speed.search_course(SIZE, corpus)
    result = speed.search_latency(SIZE, corpus, runs=2, profile=True)
    assert not result["built"] and result["runs"] == 2
    assert result["cpu_p50_ms"] > 0 and result["cpu_p99_ms"] >= result["cpu_p50_ms"]
    assert result["context_cpu_p99_ms"] >= result["context_cpu_p50_ms"] > 0
    assert "of which the calling thread" in result["profile"]
    assert "passages_search" in result["profile"]
