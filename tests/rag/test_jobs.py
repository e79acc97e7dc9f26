"""Ingestion jobs: per-file outcomes and reasons, progress, and incremental LMS sync."""

import io
import time
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from caipi.core.errors import ApplicationError
from rag import jobs, services
from rag.models import Chunk, Document, FileStatus, IngestionFile, IngestionJob, JobStatus
from rag.sources import SourceItem, source_register
from tests.rag.conftest import NOTES_DIR, make_pdf

WEEK1 = (NOTES_DIR / "week-01-what-is-learning.md").read_bytes()
WEEK2 = (NOTES_DIR / "week-02-linear-regression.md").read_bytes()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _run(course, lecturer, files):
    job = services.documents_upload(
        course=course, files=[services.Upload(n, d) for n, d in files.items()], actor=lecturer
    )
    jobs.ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job, {f.name: f for f in job.files.all()}


def test_an_upload_job_indexes_each_file_and_names_the_ones_that_failed(course, lecturer):
    job, files = _run(
        course,
        lecturer,
        {
            "week-01.md": WEEK1,
            "notes.zip": _zip({"week-02.md": WEEK2, "../escape.md": b"# no"}),
            "bundle.zip": _zip({"slides/week-03.pdf": make_pdf([("Evaluation", "Precision.")])}),
            "secret.pdf": make_pdf([(None, "x")], password="pw"),
            "empty.txt": b"",
            "table.xlsx": b"PK...",
        },
    )
    assert job.status == JobStatus.SUCCEEDED and job.progress == 1.0
    assert files["week-01.md"].status == FileStatus.INDEXED
    assert files["notes.zip"].status == FileStatus.FAILED
    assert "outside the archive" in files["notes.zip"].error
    assert files["bundle.zip"].status == FileStatus.EXPANDED
    assert files["bundle.zip/slides/week-03.pdf"].status == FileStatus.INDEXED
    assert "password" in files["secret.pdf"].error
    assert "empty" in files["empty.txt"].error
    assert "not a supported type" in files["table.xlsx"].error
    assert sorted(Document.objects.values_list("filename", flat=True)) == [
        "bundle.zip/slides/week-03.pdf",
        "week-01.md",
    ]
    assert not any(f.data for f in job.files.all())  # uploaded bytes are not kept


def test_uploading_the_same_files_again_changes_nothing(course, lecturer):
    _run(course, lecturer, {"week-01.md": WEEK1})
    ids = set(Chunk.objects.values_list("pk", flat=True))
    _, files = _run(course, lecturer, {"week-01.md": WEEK1})
    assert files["week-01.md"].status == FileStatus.UNCHANGED
    assert set(Chunk.objects.values_list("pk", flat=True)) == ids


def test_a_job_runs_once_even_if_enqueued_twice(course, lecturer):
    job, _ = _run(course, lecturer, {"week-01.md": WEEK1})
    jobs.ingestion_job_run(job_id=job.pk)  # already finished: claimed by nobody
    assert IngestionJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED


def test_a_student_cannot_upload(course, student):
    from caipi.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.documents_upload(
            course=course, files=[services.Upload("x.md", b"# x")], actor=student
        )
    assert not IngestionJob.objects.exists()


class FakeMoodle:
    """A stand-in for the Moodle course-contents seam: items, and counted fetches."""

    name = "moodle"

    def __init__(self, items: dict[str, tuple[SourceItem, bytes]]) -> None:
        self.content = items
        self.fetched: list[str] = []

    def items(self):
        return [item for item, _ in self.content.values()]

    def fetch(self, item):
        self.fetched.append(item.key)
        if item.key == "moodle:broken":
            raise ApplicationError("Moodle answered 500 for this file.")
        return self.content[item.key][1]


T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _item(key, filename, modified=T0, **fields):
    return SourceItem(
        key=key,
        title=fields.pop("title", filename),
        filename=filename,
        url=f"https://moodle.example/mod/resource/view.php?id={key[-1]}",
        section=fields.pop("section", "Week 1"),
        modified=modified,
        **fields,
    )


@pytest.fixture
def moodle():
    source = FakeMoodle(
        {
            "moodle:1": (_item("moodle:1", "week-01.md"), WEEK1),
            "moodle:2": (
                _item("moodle:2", "page.html", visible=False),
                b"<h1>Hidden</h1><p>Draft page.</p>",
            ),
        }
    )
    source_register("moodle", lambda course: source)
    yield source
    source_register("moodle", None)


def _sync(course, lecturer):
    job = services.documents_sync(course=course, source="moodle", actor=lecturer)
    jobs.ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_a_sync_records_links_sections_and_visibility(course, lecturer, moodle):
    job = _sync(course, lecturer)
    assert job.status == JobStatus.SUCCEEDED
    week1 = Document.objects.get(source_key="moodle:1")
    assert week1.url.endswith("id=1") and week1.section == "Week 1" and week1.week == 1
    assert week1.origin == "moodle" and week1.source_modified == T0
    assert not Document.objects.get(source_key="moodle:2").visible


def test_a_second_sync_fetches_only_what_changed_and_drops_what_is_gone(course, lecturer, moodle):
    _sync(course, lecturer)
    moodle.fetched.clear()
    later = T0 + timedelta(days=1)
    moodle.content["moodle:1"] = (_item("moodle:1", "week-01.md", visible=False), WEEK1)
    moodle.content["moodle:3"] = (_item("moodle:3", "week-02.md", modified=later), WEEK2)
    del moodle.content["moodle:2"]
    job = _sync(course, lecturer)
    assert moodle.fetched == ["moodle:3"]
    statuses = {f.name: f.status for f in job.files.all()}
    assert statuses == {"week-01.md": "unchanged", "week-02.md": "indexed", "page.html": "removed"}
    assert not Document.objects.get(source_key="moodle:1").visible  # hidden in Moodle since
    assert not Document.objects.filter(source_key="moodle:2").exists()


def test_a_touched_but_identical_file_is_fetched_but_not_re_embedded(course, lecturer, moodle):
    _sync(course, lecturer)
    ids = set(Chunk.objects.values_list("pk", flat=True))
    moodle.content["moodle:1"] = (
        _item("moodle:1", "week-01.md", modified=T0 + timedelta(hours=1)),
        WEEK1,
    )
    job = _sync(course, lecturer)
    assert "moodle:1" in moodle.fetched
    assert job.files.get(name="week-01.md").status == FileStatus.UNCHANGED
    assert set(Chunk.objects.values_list("pk", flat=True)) == ids


def test_a_file_moodle_fails_to_deliver_is_named_and_the_rest_synced(course, lecturer, moodle):
    moodle.content["moodle:broken"] = (_item("moodle:broken", "lecture.pdf"), b"")
    job = _sync(course, lecturer)
    assert job.files.get(name="lecture.pdf").error == "Moodle answered 500 for this file."
    assert Document.objects.filter(source_key="moodle:1").exists()


def test_a_sync_without_an_lms_connection_fails_plainly(course, lecturer):
    job = _sync(course, lecturer)
    assert job.status == JobStatus.FAILED and "No LMS connection" in job.error


# --- workers that die: heartbeat and reclaim --------------------------------------------------


def _abandoned(course, lecturer, files, *, minutes_ago=10):
    """An upload job claimed by a worker that then died: running, heartbeat long stopped."""
    job = services.documents_upload(
        course=course, files=[services.Upload(n, d) for n, d in files.items()], actor=lecturer
    )
    assert jobs._claim(job.pk)
    past = timezone.now() - timedelta(minutes=minutes_ago)
    IngestionJob.objects.filter(pk=job.pk).update(heartbeat_at=past, started_at=past)
    return job


def test_a_job_whose_worker_died_is_queued_again_and_then_finishes(course, lecturer):
    job = _abandoned(course, lecturer, {"week-01.md": WEEK1})
    enqueued = []
    assert jobs.ingestion_jobs_reclaim(enqueue=enqueued.append) == [job.pk] == enqueued
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED and job.claim == ""
    jobs.ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2
    assert job.files.get(name="week-01.md").status == FileStatus.INDEXED


def test_a_running_job_with_a_fresh_heartbeat_is_not_reclaimed(course, lecturer):
    job = _abandoned(course, lecturer, {"week-01.md": WEEK1}, minutes_ago=0)
    assert jobs.ingestion_jobs_reclaim() == []
    assert IngestionJob.objects.get(pk=job.pk).status == JobStatus.RUNNING


def test_a_job_that_keeps_losing_its_worker_fails_with_a_reason(course, lecturer):
    job = _abandoned(course, lecturer, {"week-01.md": WEEK1})
    IngestionJob.objects.filter(pk=job.pk).update(attempts=jobs.MAX_ATTEMPTS)
    assert jobs.ingestion_jobs_reclaim() == []
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.is_finished
    assert "stopped 3 times" in job.error and "upload them again" in job.error


def test_a_reclaimed_sync_runs_again_from_its_source(course, lecturer, moodle):
    job = services.documents_sync(course=course, source="moodle", actor=lecturer)
    assert jobs._claim(job.pk)
    past = timezone.now() - timedelta(minutes=10)
    # The dead worker had got as far as the first file (its name is the job's "current").
    IngestionJob.objects.filter(pk=job.pk).update(heartbeat_at=past, current="week-01.md")
    IngestionFile.objects.create(job=job, name="week-01.md")
    assert jobs.ingestion_jobs_reclaim() == [job.pk]
    jobs.ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert sorted(job.files.values_list("name", flat=True)) == ["page.html", "week-01.md"]


class TakenOver(FakeMoodle):
    """A source during whose fetch the job is reclaimed and claimed by another worker."""

    def __init__(self, items, job_id):
        super().__init__(items)
        self.job_id = job_id

    def fetch(self, item):
        IngestionJob.objects.filter(pk=self.job_id).update(claim="another-worker")
        return super().fetch(item)


def test_a_worker_whose_job_was_taken_over_stops_without_touching_it(course, lecturer):
    job = services.documents_sync(course=course, source="moodle", actor=lecturer)
    source = TakenOver(
        {
            "moodle:1": (_item("moodle:1", "week-01.md"), WEEK1),
            "moodle:2": (_item("moodle:2", "week-02.md"), WEEK2),
        },
        job.pk,
    )
    source_register("moodle", lambda course: source)
    try:
        jobs.ingestion_job_run(job_id=job.pk)
    finally:
        source_register("moodle", None)
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING and job.claim == "another-worker"
    assert source.fetched == ["moodle:1"]  # stopped before the second file
    assert not Document.objects.filter(course=course).exists()


class SlowSource(FakeMoodle):
    """A source whose fetch takes a while, and which notes the job's heartbeat meanwhile."""

    def __init__(self, items, job_id):
        super().__init__(items)
        self.job_id = job_id
        self.heartbeats = []

    def fetch(self, item):
        for _ in range(8):
            self.heartbeats.append(IngestionJob.objects.get(pk=self.job_id).heartbeat_at)
            time.sleep(0.1)
        return super().fetch(item)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_goes_on_while_a_file_takes_long(course, lecturer, settings):
    settings.RAG_JOB_STALE_SECONDS = 0.6  # heartbeat every 0.1 s
    job = services.documents_sync(course=course, source="moodle", actor=lecturer)
    source = SlowSource({"moodle:1": (_item("moodle:1", "week-01.md"), WEEK1)}, job.pk)
    source_register("moodle", lambda course: source)
    try:
        jobs.ingestion_job_run(job_id=job.pk)
    finally:
        source_register("moodle", None)
    beats = [b for b in source.heartbeats if b is not None]
    assert len(set(beats)) >= 3  # written by the heartbeat thread during one long fetch
    assert IngestionJob.objects.get(pk=job.pk).status == JobStatus.SUCCEEDED
