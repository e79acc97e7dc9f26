"""Writes of the rag app: ingesting, syncing, deleting and re-indexing lecture notes.

Ingestion of one file (``document_ingest``):

1. Hash the bytes: a document with the same key and hash is left alone (not re-embedded).
2. Parse (format, title, headings, pages) and chunk (sections, token budget, overlap).
3. Embed every passage, before anything is written.
4. In one transaction: replace the document's passages in the database, then store the new
   vectors in Chroma. If storing fails, the transaction rolls back and the new vectors are
   removed: a failed file never leaves part of its passages behind, and the previous
   version of a re-uploaded document stays searchable.
5. After the commit, the previous version's vectors are removed from Chroma.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from caipi.core.errors import PayloadTooLarge
from caipi.core.models import Course
from caipi.core.permissions import require
from rag import chunking, parsing, vectorstore
from rag.embeddings import configured_model_name, embedder
from rag.models import (
    Chunk,
    CourseIndex,
    Document,
    DocumentOrigin,
    IngestionFile,
    IngestionJob,
    JobSource,
    QuestionDay,
    UnansweredQuestion,
)
from rag.permissions import COURSE_MANAGE_DOCUMENTS, DOCUMENT_MANAGE
from rag.sources import SourceItem

logger = logging.getLogger(__name__)

Progress = Callable[[float], None]
_WEEK = re.compile(r"(?:week|woche|wk|w)[\s_-]*0*(\d{1,2})(?!\d)", re.IGNORECASE)


@dataclass(frozen=True)
class Outcome:
    """What ingesting one file did: ``indexed`` or ``unchanged``, and the document."""

    status: str
    document: Document


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def week_from(*names: str) -> int | None:
    """The week a file or section name mentions ("week-03", "Woche 3"), if any."""
    for name in names:
        match = _WEEK.search(name or "")
        if match:
            return int(match.group(1))
    return None


def course_index_get(*, course_id: int) -> CourseIndex:
    index, _ = CourseIndex.objects.get_or_create(course_id=course_id)
    return index


def _bump(course_id: int, model_name: str) -> None:
    CourseIndex.objects.filter(course_id=course_id).update(
        version=F("version") + 1, embedding_model=model_name, updated_at=timezone.now()
    )


def _item_fields(item: SourceItem) -> dict[str, Any]:
    return {
        "url": item.url,
        "section": item.section,
        "week": item.week if item.week is not None else week_from(item.section, item.filename),
        "visible": item.visible,
        "available_from": item.available_from,
        "available_until": item.available_until,
        "source_modified": item.modified,
    }


def document_ingest(
    *,
    course: Course,
    item: SourceItem,
    data: bytes,
    origin: str,
    actor: Any = None,
    progress: Progress | None = None,
) -> Outcome:
    """Parse, chunk, embed and store one file as the document ``item.key`` (steps above).

    Raises ParseError (unreadable file: nothing stored), PayloadTooLarge, or the vector
    store's or embedder's error (nothing stored; the previous version kept).
    """
    if len(data) > settings.RAG_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            _("“%(name)s” is larger than %(limit)d MB.")
            % {"name": item.filename, "limit": settings.RAG_MAX_UPLOAD_BYTES // (1024 * 1024)}
        )
    digest = content_hash(data)
    existing = Document.objects.filter(course=course, source_key=item.key).first()
    model_name = configured_model_name()
    if existing and existing.content_hash == digest and existing.embedding_model == model_name:
        return Outcome("unchanged", document_metadata_update(document=existing, item=item))
    parsed = parsing.parse(item.filename, data)
    passages = chunking.chunk_blocks(
        parsed.blocks, budget=settings.RAG_CHUNK_TOKENS, overlap=settings.RAG_CHUNK_OVERLAP
    )
    vectors = _embed(parsed.title, passages, progress)
    title = item.title or parsed.title
    fields = {
        **_item_fields(item),
        "title": title[:300],
        "filename": item.filename[:300],
        "kind": parsed.kind,
        "origin": origin,
        "content_hash": digest,
        "size_bytes": len(data),
        "pages": parsed.pages,
        "chunk_count": len(passages),
        "embedding_model": model_name,
    }
    document, old_ids = _store(course, item.key, fields, passages, vectors, actor, model_name)
    transaction.on_commit(
        lambda: vectorstore.chunks_delete(course_id=course.pk, ids=old_ids), robust=True
    )
    return Outcome("indexed", document)


def _embed_text(title: str, passage: chunking.Passage) -> str:
    """What is embedded: the passage with its document title and headings as context."""
    return chunking.with_context(title, passage.heading, passage.text)


def _embed(title: str, passages: list[chunking.Passage], progress: Progress | None) -> list:
    vectors: list[list[float]] = []
    model = embedder()
    step = 16
    for start in range(0, len(passages), step):
        batch = passages[start : start + step]
        vectors.extend(model.embed_passages([_embed_text(title, p) for p in batch]))
        if progress:
            progress(min(1.0, (start + len(batch)) / len(passages)))
    return vectors


@transaction.atomic
def _store(
    course: Course,
    key: str,
    fields: dict[str, Any],
    passages: list[chunking.Passage],
    vectors: list[list[float]],
    actor: Any,
    model_name: str,
) -> tuple[Document, list[str]]:
    """Replace the document's passages (DB and Chroma) atomically; returns the old ids."""
    index = CourseIndex.objects.select_for_update().get_or_create(course=course)[0]
    if index.embedding_model and index.embedding_model != model_name:
        _reembed(course, index, model_name)
    document, created = Document.objects.update_or_create(
        course=course, source_key=key, defaults=fields
    )
    if created and actor is not None and getattr(actor, "pk", None):
        Document.objects.filter(pk=document.pk).update(added_by=actor)
    old_ids = [str(pk) for pk in document.chunks.values_list("pk", flat=True)]
    document.chunks.all().delete()
    chunks = Chunk.objects.bulk_create(
        Chunk(
            document=document,
            course_id=course.pk,
            ordinal=i,
            text=p.text,
            heading=p.heading[:500],
            page=p.page,
            page_end=p.page_end,
            tokens=p.tokens,
        )
        for i, p in enumerate(passages)
    )
    new_ids = [str(c.pk) for c in chunks]
    try:
        vectorstore.chunks_upsert(
            course_id=course.pk,
            ids=new_ids,
            texts=[p.text for p in passages],
            embeddings=vectors,
            metadatas=[
                {"document_id": document.pk, "page": p.page or 0, "heading": p.heading}
                for p in passages
            ],
            embedding_model=model_name,
        )
    except Exception:
        _forget_quietly(course.pk, new_ids)
        raise
    _bump(course.pk, model_name)
    return document, old_ids


def _forget_quietly(course_id: int, ids: list[str]) -> None:
    try:
        vectorstore.chunks_delete(course_id=course_id, ids=ids)
    except Exception:
        logger.exception("could not remove %d vectors of a failed ingestion", len(ids))


def _reembed(course: Course, index: CourseIndex, model_name: str) -> None:
    """Rebuild every vector of the course with ``model_name`` (caller holds the index lock)."""
    vectorstore.course_forget(course_id=course.pk)
    model = embedder()
    chunks = Chunk.objects.filter(course_id=course.pk).select_related("document")
    batch: list[Chunk] = []
    for chunk in chunks.iterator(chunk_size=256):
        batch.append(chunk)
        if len(batch) == 64:
            _reembed_batch(course.pk, batch, model, model_name)
            batch = []
    if batch:
        _reembed_batch(course.pk, batch, model, model_name)
    Document.objects.filter(course=course).update(embedding_model=model_name)
    index.embedding_model = model_name
    index.save(update_fields=["embedding_model", "updated_at"])


def _reembed_batch(course_id: int, chunks: list[Chunk], model: Any, model_name: str) -> None:
    texts = [
        _embed_text(
            c.document.title,
            chunking.Passage(c.text, c.heading, c.page, c.page_end, c.tokens),
        )
        for c in chunks
    ]
    vectorstore.chunks_upsert(
        course_id=course_id,
        ids=[str(c.pk) for c in chunks],
        texts=[c.text for c in chunks],
        embeddings=model.embed_passages(texts),
        metadatas=[
            {"document_id": c.document_id, "page": c.page or 0, "heading": c.heading}
            for c in chunks
        ],
        embedding_model=model_name,
    )


@transaction.atomic
def course_reindex(*, course: Course) -> int:
    """Re-embed all of the course's passages with the configured model; returns how many."""
    index = CourseIndex.objects.select_for_update().get_or_create(course=course)[0]
    _reembed(course, index, embedder().name)
    _bump(course.pk, embedder().name)
    return Chunk.objects.filter(course_id=course.pk).count()


def lexical_index_refresh(*, course_id: int) -> None:
    """Build and save the course's BM25 index for its current version (after ingestion),
    so the first question does not wait for it. A failure only leaves it to the search."""
    from rag.retrieval import lexical_index

    version = CourseIndex.objects.filter(course_id=course_id).values_list("version", flat=True)
    try:
        lexical_index(course_id, version.first() or 0)
    except Exception:
        logger.warning("could not prepare the lexical index of course %s", course_id, exc_info=True)


def document_metadata_update(*, document: Document, item: SourceItem) -> Document:
    """Refresh what the source says about an unchanged document (visibility, dates, link)."""
    for name, value in _item_fields(item).items():
        setattr(document, name, value)
    if item.title:
        document.title = item.title[:300]
    document.save()
    return document


def document_delete(*, document: Document, actor: Any) -> None:
    """Delete a document and its passages (database and vectors). Staff only (403)."""
    require(actor, DOCUMENT_MANAGE, document)
    document_remove(document=document)


def document_remove(*, document: Document) -> None:
    """Delete a document and its passages, database first, then its vectors."""
    ids = [str(pk) for pk in document.chunks.values_list("pk", flat=True)]
    course_id = document.course_id
    with transaction.atomic():
        document.delete()
        CourseIndex.objects.filter(course_id=course_id).update(version=F("version") + 1)
    _forget_quietly(course_id, ids)


def course_forget(*, course_id: int) -> None:
    """Remove a (deleted) course's vectors: its whole Chroma collection."""
    vectorstore.course_forget(course_id=course_id)


# --- jobs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file a lecturer sent: its name and bytes."""

    name: str
    data: bytes


def documents_upload(*, course: Course, files: list[Upload], actor: Any) -> IngestionJob:
    """Queue uploaded files (single files or zip archives) for ingestion; 202-style.

    Raises PermissionDenied (not staff of the course) or PayloadTooLarge (a file over the
    limit: nothing is queued). Unsupported or broken files are queued and reported per file.
    """
    require(actor, COURSE_MANAGE_DOCUMENTS, course)
    for upload in files:
        if len(upload.data) > settings.RAG_MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(
                _("“%(name)s” is larger than %(limit)d MB.")
                % {"name": upload.name, "limit": settings.RAG_MAX_UPLOAD_BYTES // (1024 * 1024)}
            )
    with transaction.atomic():
        job = IngestionJob.objects.create(course=course, created_by=actor, source=JobSource.UPLOAD)
        IngestionFile.objects.bulk_create(
            IngestionFile(job=job, name=u.name[:500], data=u.data, size_bytes=len(u.data))
            for u in files
        )
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def documents_ingest_now(*, course: Course, files: list[Upload]) -> IngestionJob:
    """Ingest files right here (command line, demo start-up): no permission check, no queue.

    The caller is trusted (an admin's shell). Returns the finished job with its files.
    """
    from rag.jobs import ingestion_job_run

    job = IngestionJob.objects.create(course=course, source=JobSource.UPLOAD)
    IngestionFile.objects.bulk_create(
        IngestionFile(job=job, name=u.name[:500], data=u.data, size_bytes=len(u.data))
        for u in files
    )
    ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def documents_sync(*, course: Course, source: str, actor: Any) -> IngestionJob:
    """Queue a sync of the course's documents from the registered ``source`` (e.g. Moodle)."""
    require(actor, COURSE_MANAGE_DOCUMENTS, course)
    with transaction.atomic():
        job = IngestionJob.objects.create(
            course=course,
            created_by=actor,
            source=JobSource.SYNC,
            source_name=source,
            current=source,
        )
        transaction.on_commit(lambda: _enqueue(job.pk))
    return job


def _enqueue(job_id: int) -> None:
    from rag.tasks import ingestion_enqueue

    ingestion_enqueue(job_id=job_id)


# --- questions ------------------------------------------------------------------------------


def question_record(
    *, course_id: int, document_ids: list[int], question: str | None, retention_days: int = 0
) -> None:
    """Count a question the assistant searched the notes for, and which documents it cited.

    ``document_ids`` empty means the notes did not answer. ``question`` is kept (until
    ``retention_days`` have passed) only when given: callers pass it only for courses that
    keep conversation history.
    """
    today = timezone.localdate()
    answered = bool(document_ids)
    with transaction.atomic():
        QuestionDay.objects.get_or_create(course_id=course_id, day=today)
        QuestionDay.objects.filter(course_id=course_id, day=today).update(
            asked=F("asked") + 1, unanswered=F("unanswered") + (0 if answered else 1)
        )
        if document_ids:
            Document.objects.filter(pk__in=set(document_ids), course_id=course_id).update(
                citations=F("citations") + 1
            )
        if not answered and question and retention_days > 0:
            UnansweredQuestion.objects.create(
                course_id=course_id,
                text=question[:2000],
                expires_at=timezone.now() + timedelta(days=retention_days),
            )


def unanswered_purge_expired() -> int:
    """Delete kept unanswered questions past their course's retention; returns how many."""
    deleted, _ = UnansweredQuestion.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


def item_for_upload(name: str) -> SourceItem:
    """The source item of an uploaded file: keyed by its name (a new upload replaces it)."""
    return SourceItem(
        key=f"upload:{name}",
        title="",
        filename=name,
        week=week_from(name),
    )


ORIGINS = {JobSource.UPLOAD: DocumentOrigin.UPLOAD, JobSource.SYNC: DocumentOrigin.MOODLE}
