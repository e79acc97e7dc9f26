"""Moodle as the lecture-note source of ``rag`` and the course-data provider of prompt
templates, through the web services client, against the fake answering with the lab's
recorded responses. Alice (lecturer) syncs ML101, which is Moodle course 2 of the LMS."""

from __future__ import annotations

from datetime import UTC, datetime

from caipi.gateway import lms_sources
from lms_connectors.models import Platform
from rag import jobs, services
from rag.models import Document, FileStatus, JobStatus


def _sync(course, lecturer):
    job = services.documents_sync(course=course, source="moodle", actor=lecturer)
    jobs.ingestion_job_run(job_id=job.pk)
    job.refresh_from_db()
    return job


def test_a_sync_indexes_files_pages_and_chapters_with_moodles_visibility(course, lecturer, linked):
    job = _sync(course, lecturer)

    assert job.status == JobStatus.SUCCEEDED, job.error
    documents = {d.title: d for d in Document.objects.filter(course=course)}
    assert {"Lecture notes week 1", "Glossary", "Linear models", "Decision trees"} <= set(documents)
    assert not documents["Exam solutions (draft)"].visible
    assert documents["Week 2 reading"].available_from == datetime(2026, 9, 15, tzinfo=UTC)
    assert documents["Glossary"].section == "Week 1: Foundations"


def test_a_second_sync_downloads_nothing_that_did_not_change(course, lecturer, linked, moodle):
    _sync(course, lecturer)
    downloaded = len(moodle.downloads)

    job = _sync(course, lecturer)

    assert job.status == JobStatus.SUCCEEDED
    assert len(moodle.downloads) == downloaded
    assert set(job.files.values_list("status", flat=True)) == {FileStatus.UNCHANGED}


def test_a_file_that_vanished_during_the_sync_is_named_and_the_rest_indexed(
    course, lecturer, linked, moodle
):
    moodle.gone.update(path for path in _recorded_paths() if path.endswith("week-01-notes.md"))

    job = _sync(course, lecturer)

    failed = job.files.get(status=FileStatus.FAILED)
    assert "week-01-notes.md" in failed.error and "no longer in Moodle" in failed.error
    assert Document.objects.filter(course=course, title="Glossary").exists()


def test_a_sync_without_a_token_tells_the_lecturer_who_can_fix_it(course, lecturer, linked):
    Platform.objects.update(ws_token_encrypted="")

    job = _sync(course, lecturer)

    assert job.status == JobStatus.FAILED
    assert "No Moodle web service token" in job.error


def test_templates_get_the_visible_sections_activities_and_course_dates(course, linked):
    data = lms_sources.course_data(course=course)["course"]

    assert data["sections"][1:] == ["Week 1: Foundations", "Week 2: Models"]
    assert "Glossary" in data["activities"] and "Assignment 1" in data["activities"]
    assert "Exam solutions (draft)" not in data["activities"]
    assert (data["start"], data["end"]) == ("2026-09-01", "2027-02-04")


def test_course_data_of_an_unreachable_moodle_is_empty_and_remembered(course, linked, moodle):
    moodle.mode = "error"

    assert lms_sources.course_data(course=course) == {}
    moodle.mode = ""
    assert lms_sources.course_data(course=course) == {}  # not asked again for a minute


def _recorded_paths() -> list[str]:
    import json

    from tests.support.moodle_ws import recording

    return list(json.loads(recording("files.json")))
