"""Running an ingestion job: uploaded files (zip archives unpacked first) or an LMS sync.

A job is claimed by a conditional update (queued -> running), so two workers never run
the same job. Each file's outcome (indexed, unchanged, failed with the reason) is kept
on its ``IngestionFile`` row; ``progress`` (0..1) is updated as passages are embedded, for
the progress bar. A file that fails does not stop the others.

A worker that dies (killed, out of memory, machine restarted) must not leave a job
"running" forever. The worker that claims a job gets a ``claim`` token and a heartbeat
thread writes ``heartbeat_at`` every few seconds while it works. ``ingestion_jobs_reclaim``
(a periodic task, and before the in-process runner takes a job) finds running jobs whose
heartbeat is older than ``CAIPI_RAG_JOB_STALE_SECONDS`` and puts them back in the queue
(their files not yet done are run again; ingestion of one file is all-or-nothing), or fails
them with a reason once they were tried ``MAX_ATTEMPTS`` times. A worker that was only
slow and finds its job taken over stops at its next progress write without touching it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from caipi.core.errors import ApplicationError
from rag import services
from rag.embeddings import configured_model_name
from rag.models import (
    Document,
    DocumentOrigin,
    FileStatus,
    IngestionFile,
    IngestionJob,
    JobSource,
    JobStatus,
)
from rag.parsing import is_archive
from rag.parsing.archive import archive_members
from rag.sources import SourceItem, source_for

logger = logging.getLogger(__name__)

PROGRESS_EVERY_SECONDS = 0.25
MAX_ATTEMPTS = 3


class JobLost(Exception):
    """This worker's job was reclaimed by another one (its heartbeat had stopped)."""


def heartbeat_seconds() -> float:
    """How often a running job's heartbeat is written: a sixth of the stale limit, <= 10 s."""
    return max(0.05, min(10.0, settings.RAG_JOB_STALE_SECONDS / 6))


def _claim(job_id: int) -> str | None:
    """Take the job if it is queued; returns this worker's claim token, or None."""
    token = uuid.uuid4().hex
    now = timezone.now()
    claimed = IngestionJob.objects.filter(Q(pk=job_id) & Q(status=JobStatus.QUEUED)).update(
        status=JobStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
        claim=token,
        attempts=F("attempts") + 1,
    )
    return token if claimed == 1 else None


class _Heartbeat:
    """Writes ``heartbeat_at`` of the claimed job every few seconds from its own thread
    (with its own database connection), so a long embedding call still shows life."""

    def __init__(self, job_id: int, token: str) -> None:
        self.job_id, self.token = job_id, token
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"rag-heartbeat-{job_id}", daemon=True
        )

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        try:
            while not self._stop.wait(heartbeat_seconds()):
                IngestionJob.objects.filter(
                    pk=self.job_id, claim=self.token, status=JobStatus.RUNNING
                ).update(heartbeat_at=timezone.now())
        except Exception:  # the worker goes on; a missed heartbeat at worst re-queues it
            logger.warning("heartbeat of ingestion job %s failed", self.job_id, exc_info=True)
        finally:
            connection.close()


class _Progress:
    """Writes the job's progress for ``total`` units of work, at most a few times a second.

    Each write is conditional on this worker's claim: a job taken over raises JobLost."""

    def __init__(self, job: IngestionJob, total: int) -> None:
        self.job, self.total, self.done = job, max(total, 1), 0
        self._written = 0.0

    def unit(self, name: str) -> Callable[[float], None]:
        self._write(name, self.done / self.total, force=True)

        def report(fraction: float) -> None:
            self._write(name, (self.done + fraction) / self.total)

        return report

    def finish_unit(self) -> None:
        self.done += 1

    def _write(self, name: str, value: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._written >= PROGRESS_EVERY_SECONDS:
            mine = IngestionJob.objects.filter(pk=self.job.pk, claim=self.job.claim).update(
                progress=min(value, 0.999), current=name[:300], heartbeat_at=timezone.now()
            )
            if not mine:
                raise JobLost(self.job.pk)
            self._written = now


def ingestion_job_run(*, job_id: int) -> None:
    """Run the job if it is still queued (see the module doc); never raises for bad files."""
    token = _claim(job_id)
    if token is None:
        logger.info("ingestion job %s already taken or finished", job_id)
        return
    job = IngestionJob.objects.select_related("course", "created_by").get(pk=job_id)
    try:
        with _Heartbeat(job_id, token):
            if job.source == JobSource.SYNC:
                _run_sync(job)
            else:
                _run_upload(job)
    except JobLost:
        logger.warning("ingestion job %s was taken over by another worker; stopping", job_id)
        return
    except ApplicationError as exc:
        _finish(job, JobStatus.FAILED, str(exc.message))
        return
    except Exception:
        logger.exception("ingestion job %s failed", job_id)
        _finish(job, JobStatus.FAILED, _("Indexing stopped because of an internal error."))
        raise
    _finish(job, JobStatus.SUCCEEDED)
    services.lexical_index_refresh(course_id=job.course_id)


def _finish(job: IngestionJob, status: str, error: str = "") -> None:
    IngestionJob.objects.filter(pk=job.pk, claim=job.claim).update(
        status=status, error=error, finished_at=timezone.now(), progress=1.0, current=""
    )


def ingestion_jobs_reclaim(*, enqueue: Callable[[int], object] | None = None) -> list[int]:
    """Re-queue running jobs whose worker stopped (no heartbeat for the stale limit), or
    fail them after ``MAX_ATTEMPTS``; returns the ids re-queued (each passed to ``enqueue``).
    """
    cutoff = timezone.now() - timedelta(seconds=settings.RAG_JOB_STALE_SECONDS)
    stale = IngestionJob.objects.filter(status=JobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    requeued: list[int] = []
    for job in stale.only("pk", "claim", "attempts", "source"):
        mine = IngestionJob.objects.filter(pk=job.pk, claim=job.claim, status=JobStatus.RUNNING)
        if job.attempts >= MAX_ATTEMPTS:
            mine.update(
                status=JobStatus.FAILED,
                claim="",
                finished_at=timezone.now(),
                progress=1.0,
                current="",
                error=_(
                    "Indexing stopped: the worker running it stopped %(n)d times. "
                    "Files not marked as indexed were not indexed; upload them again."
                )
                % {"n": job.attempts},
            )
            logger.error("ingestion job %s failed after %s attempts", job.pk, job.attempts)
            continue
        with transaction.atomic():
            if not mine.update(status=JobStatus.QUEUED, claim="", heartbeat_at=None, current=""):
                continue  # it came back to life, or someone else reclaimed it
            if job.source == JobSource.SYNC:  # the sync runs again and records every item
                IngestionFile.objects.filter(job_id=job.pk).delete()
        logger.warning("ingestion job %s lost its worker; queued again", job.pk)
        requeued.append(job.pk)
        if enqueue is not None:
            enqueue(job.pk)
    return requeued


def _fail(file: IngestionFile, message: str) -> None:
    file.status, file.error, file.data = FileStatus.FAILED, message, None
    file.save(update_fields=["status", "error", "data"])


def _expand_archives(job: IngestionJob) -> None:
    for archive in job.files.filter(status=FileStatus.QUEUED).order_by("pk"):
        if not is_archive(archive.name):
            continue
        try:
            members = archive_members(archive.name, bytes(archive.data or b""))
        except ApplicationError as exc:
            _fail(archive, str(exc.message))
            continue
        IngestionFile.objects.bulk_create(
            IngestionFile(
                job=job,
                name=f"{archive.name}/{member.name}"[:500],
                data=member.data,
                size_bytes=len(member.data),
            )
            for member in members
        )
        archive.status, archive.data = FileStatus.EXPANDED, None
        archive.save(update_fields=["status", "data"])


def _run_upload(job: IngestionJob) -> None:
    _expand_archives(job)
    files = list(job.files.filter(status=FileStatus.QUEUED).order_by("pk"))
    progress = _Progress(job, len(files))
    for file in files:
        report = progress.unit(file.name)
        item = services.item_for_upload(file.name)
        _ingest(job, file, item, bytes(file.data or b""), DocumentOrigin.UPLOAD, report)
        progress.finish_unit()


def _ingest(
    job: IngestionJob,
    file: IngestionFile,
    item: SourceItem,
    data: bytes,
    origin: str,
    report: Callable[[float], None],
) -> None:
    """Ingest one file, recording its outcome on ``file`` (the reason, when it failed)."""
    try:
        outcome = services.document_ingest(
            course=job.course,
            item=item,
            data=data,
            origin=origin,
            actor=job.created_by,
            progress=report,
        )
    except JobLost:
        raise
    except ApplicationError as exc:
        _fail(file, str(exc.message))
        return
    except Exception:
        logger.exception("could not index %s (job %s)", file.name, job.pk)
        _fail(file, _("“%(name)s” could not be indexed (internal error).") % {"name": file.name})
        return
    file.status = FileStatus.INDEXED if outcome.status == "indexed" else FileStatus.UNCHANGED
    file.document, file.data = outcome.document, None
    file.save(update_fields=["status", "document", "data"])


def _run_sync(job: IngestionJob) -> None:
    """Incremental sync: fetch only items modified since the last sync; drop removed ones."""
    source = source_for(job.source_name or job.current, job.course)
    if source is None:
        raise ApplicationError(_("No LMS connection is set up for this course."))
    items = list(source.items())
    existing = {
        d.source_key: d
        for d in Document.objects.filter(course=job.course, origin=DocumentOrigin.MOODLE)
    }
    progress = _Progress(job, len(items))
    model_name = configured_model_name()
    for item in items:
        report = progress.unit(item.filename)
        document = existing.pop(item.key, None)
        file = IngestionFile.objects.create(
            job=job, name=item.filename[:500], size_bytes=item.size or 0
        )
        if document is not None and _unchanged(document, item, model_name):
            services.document_metadata_update(document=document, item=item)
            file.status, file.document = FileStatus.UNCHANGED, document
            file.save(update_fields=["status", "document"])
        else:
            try:
                data = source.fetch(item)
            except ApplicationError as exc:
                _fail(file, str(exc.message))
            else:
                _ingest(job, file, item, data, DocumentOrigin.MOODLE, report)
        progress.finish_unit()
    for gone in existing.values():
        IngestionFile.objects.create(job=job, name=gone.filename, status=FileStatus.REMOVED)
        services.document_remove(document=gone)


def _unchanged(document: Document, item: SourceItem, model_name: str) -> bool:
    return (
        item.modified is not None
        and document.source_modified == item.modified
        and document.embedding_model == model_name
        and document.chunk_count > 0
    )
