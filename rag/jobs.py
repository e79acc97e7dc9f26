"""Running an ingestion job: uploaded files (zip archives unpacked first) or an LMS sync.

A job is claimed by a conditional update (queued -> running), so two workers never run
the same job. Each file's outcome (indexed, unchanged, failed with the reason) is kept
on its ``IngestionFile`` row; ``progress`` (0..1) is updated as passages are embedded, for
the progress bar. A file that fails does not stop the others.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.db.models import Q
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


def _claim(job_id: int) -> bool:
    claimed = IngestionJob.objects.filter(Q(pk=job_id) & Q(status=JobStatus.QUEUED)).update(
        status=JobStatus.RUNNING, started_at=timezone.now()
    )
    return claimed == 1


class _Progress:
    """Writes the job's progress for ``total`` units of work, at most a few times a second."""

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
            IngestionJob.objects.filter(pk=self.job.pk).update(
                progress=min(value, 0.999), current=name[:300]
            )
            self._written = now


def ingestion_job_run(*, job_id: int) -> None:
    """Run the job if it is still queued (see the module doc); never raises for bad files."""
    if not _claim(job_id):
        logger.info("ingestion job %s already taken or finished", job_id)
        return
    job = IngestionJob.objects.select_related("course", "created_by").get(pk=job_id)
    try:
        if job.source == JobSource.SYNC:
            _run_sync(job)
        else:
            _run_upload(job)
    except ApplicationError as exc:
        _finish(job, JobStatus.FAILED, exc.message)
        return
    except Exception:
        logger.exception("ingestion job %s failed", job_id)
        _finish(job, JobStatus.FAILED, _("Indexing stopped because of an internal error."))
        raise
    _finish(job, JobStatus.SUCCEEDED)


def _finish(job: IngestionJob, status: str, error: str = "") -> None:
    IngestionJob.objects.filter(pk=job.pk).update(
        status=status, error=error, finished_at=timezone.now(), progress=1.0, current=""
    )


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
            _fail(archive, exc.message)
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
    except ApplicationError as exc:
        _fail(file, exc.message)
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
    source = source_for(job.current, job.course)
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
                _fail(file, exc.message)
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
