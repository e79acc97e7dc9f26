"""The one module that talks to Chroma: one collection per course, embeddings always ours.

With ``CHROMA_URL`` unset Chroma runs embedded, persisted in ``CHROMA_PATH`` (inside
``CAIPI_DATA_DIR``); with it set, CAIPI talks to that Chroma server. Collections are
created without an embedding function: Chroma's default one would download a model from a
hub at run time, which a university's closed network (and this project) does not allow;
callers pass the vectors they got from CAIPI's own embedding models.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import chromadb
from chromadb.config import Settings as ChromaSettings
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its id, text, metadata (document, page...) and distance."""

    id: str
    text: str
    metadata: dict[str, Any]
    distance: float


@functools.cache
def _client(url: str | None, path: str) -> chromadb.api.ClientAPI:
    options = ChromaSettings(anonymized_telemetry=False)
    if url:
        parts = urlsplit(url)
        return chromadb.HttpClient(
            host=parts.hostname or "localhost",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=options,
        )
    return chromadb.PersistentClient(path=path, settings=options)


def chroma_client() -> chromadb.api.ClientAPI:
    """The client for the configured Chroma (server or embedded), shared by the process."""
    return _client(settings.CHROMA_URL, str(settings.CHROMA_PATH))


def course_collection(*, course_id: int) -> Any:
    """The course's collection (created on first use), cosine distance, no embedding function."""
    return chroma_client().get_or_create_collection(
        name=f"course-{course_id}", embedding_function=None, metadata={"hnsw:space": "cosine"}
    )


def chunks_upsert(
    *,
    course_id: int,
    ids: list[str],
    texts: list[str],
    embeddings: list[list[float]],
    metadatas: list[dict[str, Any]],
) -> None:
    """Store (or replace) chunks of the course's lecture notes with their vectors."""
    course_collection(course_id=course_id).upsert(
        ids=ids, documents=texts, embeddings=embeddings, metadatas=metadatas
    )


def chunks_query(*, course_id: int, embedding: list[float], limit: int = 5) -> list[Hit]:
    """The ``limit`` chunks of the course nearest to ``embedding``, nearest first.

    Only the given course's collection is searched: one course never sees another's notes.
    """
    result = course_collection(course_id=course_id).query(
        query_embeddings=[embedding], n_results=limit
    )
    return [
        Hit(id=id_, text=text or "", metadata=dict(meta or {}), distance=float(distance))
        for id_, text, meta, distance in zip(
            result["ids"][0],
            result["documents"][0],
            result["metadatas"][0],
            result["distances"][0],
            strict=True,
        )
    ]


def course_forget(*, course_id: int) -> None:
    """Delete the course's collection, if there is one."""
    client = chroma_client()
    if any(c.name == f"course-{course_id}" for c in client.list_collections()):
        client.delete_collection(f"course-{course_id}")
