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
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import chromadb
import numpy as np
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
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


def _name(course_id: int) -> str:
    return f"course-{course_id}"


# Collection handles by (server URL, path, course): looking a collection up costs a few ms
# in embedded Chroma, twice per search before this cache. A handle whose collection was
# deleted (by another process) raises NotFoundError: ``_with_collection`` drops it and
# looks the collection up again.
_handles: dict[tuple[str | None, str, int], Any] = {}
_handles_lock = threading.Lock()


def _handle_key(course_id: int) -> tuple[str | None, str, int]:
    return (settings.CHROMA_URL, str(settings.CHROMA_PATH), course_id)


def _cached_collection(course_id: int) -> Any:
    key = _handle_key(course_id)
    with _handles_lock:
        handle = _handles.get(key)
    if handle is None:
        handle = course_collection(course_id=course_id)
        with _handles_lock:
            _handles[key] = handle
    return handle


def _forget_handle(course_id: int) -> None:
    with _handles_lock:
        _handles.pop(_handle_key(course_id), None)


def _with_collection(course_id: int, call: Any) -> Any:
    """``call(collection)`` on the cached handle, retried once on a fresh one if stale."""
    try:
        return call(_cached_collection(course_id))
    except NotFoundError:
        _forget_handle(course_id)
        return call(_cached_collection(course_id))


def course_collection(*, course_id: int, embedding_model: str | None = None) -> Any:
    """The course's collection (created on first use), cosine distance, no embedding function.

    ``embedding_model`` is recorded in a new collection's metadata: the model its vectors
    come from (see ``collection_model``).
    """
    metadata: dict[str, Any] = {"hnsw:space": "cosine"}
    if embedding_model:
        metadata["embedding_model"] = embedding_model
    return chroma_client().get_or_create_collection(
        name=_name(course_id), embedding_function=None, metadata=metadata
    )


def collection_model(*, course_id: int) -> str | None:
    """The embedding model recorded with the course's collection; None when it has none."""
    try:
        collection = chroma_client().get_collection(name=_name(course_id))
    except (ValueError, NotFoundError):
        return None
    return (collection.metadata or {}).get("embedding_model")


def chunks_upsert(
    *,
    course_id: int,
    ids: list[str],
    texts: list[str],
    embeddings: list[list[float]],
    metadatas: list[dict[str, Any]],
    embedding_model: str | None = None,
) -> None:
    """Store (or replace) chunks of the course's lecture notes with their vectors."""
    course_collection(course_id=course_id, embedding_model=embedding_model).upsert(
        ids=ids, documents=texts, embeddings=embeddings, metadatas=metadatas
    )


def chunks_delete(*, course_id: int, ids: list[str]) -> None:
    """Remove chunks by id (unknown ids are ignored)."""
    if ids:
        _with_collection(course_id, lambda collection: collection.delete(ids=ids))


def chunks_query(
    *,
    course_id: int,
    embedding: list[float],
    limit: int = 5,
    document_ids: list[int] | None = None,
    exclude_document_ids: list[int] | None = None,
    texts: bool = True,
    metadata: bool = True,
) -> list[Hit]:
    """The ``limit`` chunks of the course nearest to ``embedding``, nearest first.

    Only the given course's collection is searched: one course never sees another's notes.
    ``document_ids`` (when given) limits the search to chunks whose metadata
    ``document_id`` is one of them (an empty list finds nothing); ``exclude_document_ids``
    leaves those documents out. Filtered searches are several times slower than plain ones
    in embedded Chroma: callers pass the shorter of the two lists, or none. ``texts=False``
    and ``metadata=False`` leave the passages' texts and metadata out (``Hit.text`` and
    ``Hit.metadata`` empty): reading metadata is most of an embedded query's cost (at 100k
    passages 160 hits cost ~20 ms of CPU with it, ~5 ms without).
    """
    if document_ids is not None and not document_ids:
        return []
    where: dict[str, Any] | None = None
    if document_ids is not None:
        where = {"document_id": {"$in": list(document_ids)}}
    elif exclude_document_ids:
        where = {"document_id": {"$nin": list(exclude_document_ids)}}
    include: Any = [
        "distances",
        *(["metadatas"] if metadata else []),
        *(["documents"] if texts else []),
    ]
    result = _with_collection(
        course_id,
        lambda collection: collection.query(
            query_embeddings=[embedding], n_results=limit, where=where, include=include
        ),
    )
    ids = result["ids"][0]
    documents = result["documents"][0] if texts else [""] * len(ids)
    metadatas = result["metadatas"][0] if metadata else [None] * len(ids)
    return [
        Hit(id=id_, text=text or "", metadata=dict(meta or {}), distance=float(distance))
        for id_, text, meta, distance in zip(
            ids, documents, metadatas, result["distances"][0], strict=True
        )
    ]


def chunks_embeddings(*, course_id: int, ids: list[str]) -> dict[str, np.ndarray]:
    """The stored vectors of the given chunks, as float32 arrays (ids Chroma does not know
    are left out)."""
    if not ids:
        return {}
    result = _with_collection(
        course_id, lambda collection: collection.get(ids=ids, include=["embeddings"])
    )
    vectors = np.asarray(result["embeddings"], dtype=np.float32)
    return {id_: vectors[row] for row, id_ in enumerate(result["ids"])}


def chunks_count(*, course_id: int) -> int:
    return int(_with_collection(course_id, lambda collection: collection.count()))


def course_forget(*, course_id: int) -> None:
    """Delete the course's collection, if there is one."""
    _forget_handle(course_id)
    client = chroma_client()
    if any(c.name == _name(course_id) for c in client.list_collections()):
        client.delete_collection(_name(course_id))
