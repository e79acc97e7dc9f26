"""The rag REST API: who may upload, delete, search and read passages, and what they get."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from rag import tasks
from rag.models import Document, IngestionJob, JobStatus
from tests.rag.conftest import NOTES_DIR, ingest

WEEK1 = (NOTES_DIR / "week-01-what-is-learning.md").read_bytes()


def _upload(client, course, *files):
    return client.post(
        reverse("rag:api_documents", args=[course.pk]),
        {"files": [SimpleUploadedFile(name, data) for name, data in files]},
    )


def test_a_lecturer_upload_is_accepted_with_the_job_to_poll(client, course, lecturer):
    client.force_login(lecturer)
    response = _upload(client, course, ("week-01.md", WEEK1))
    assert response.status_code == 202
    job = IngestionJob.objects.get()
    assert response["Location"] == reverse("rag:api_job", args=[job.pk])
    assert response.json()["status"] == "queued"
    polled = client.get(response["Location"]).json()
    assert polled["files"][0]["name"] == "week-01.md"


def test_a_student_may_not_upload(client, course, student):
    client.force_login(student)
    response = _upload(client, course, ("week-01.md", WEEK1))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not IngestionJob.objects.exists()


def test_an_upload_over_the_size_limit_is_refused_with_413(client, course, lecturer, settings):
    settings.RAG_MAX_UPLOAD_BYTES = 1024
    client.force_login(lecturer)
    response = _upload(client, course, ("big.md", b"x" * 5000))
    assert response.status_code == 413
    assert "big.md" in response.json()["error"]["message"]
    assert not IngestionJob.objects.exists()


def test_an_upload_without_files_is_refused(client, course, lecturer):
    client.force_login(lecturer)
    response = client.post(reverse("rag:api_documents", args=[course.pk]), {})
    assert response.status_code == 400


def test_a_student_may_not_see_another_courses_job(client, course, lecturer, outsider):
    client.force_login(lecturer)
    location = _upload(client, course, ("week-01.md", WEEK1))["Location"]
    client.force_login(outsider)
    assert client.get(location).status_code == 404


def test_a_student_may_not_delete_a_document(client, course, student):
    document = ingest(course, "week-01.md", WEEK1).document
    client.force_login(student)
    response = client.delete(reverse("rag:api_document", args=[document.pk]))
    assert response.status_code == 403
    assert Document.objects.filter(pk=document.pk).exists()


def test_a_lecturer_deletes_a_document(client, course, lecturer):
    document = ingest(course, "week-01.md", WEEK1).document
    client.force_login(lecturer)
    assert client.delete(reverse("rag:api_document", args=[document.pk])).status_code == 204
    assert not Document.objects.exists()


def test_a_student_of_another_course_cannot_search_it(client, course, outsider):
    ingest(course, "week-01.md", WEEK1)
    client.force_login(outsider)
    url = reverse("rag:api_search", args=[course.pk])
    response = client.post(url, {"query": "machine learning"}, content_type="application/json")
    assert response.status_code == 403


def test_a_student_searches_and_gets_cited_passages(client, course, student):
    ingest(course, "week-01.md", WEEK1)
    client.force_login(student)
    url = reverse("rag:api_search", args=[course.pk])
    body = client.post(
        url,
        {"query": "How did Tom Mitchell define learning?", "k": 2},
        content_type="application/json",
    ).json()
    assert body["answered"]
    first = body["passages"][0]
    assert {"document", "heading", "page", "url", "chunk_id", "score", "text"} <= set(first)


def test_a_student_cannot_open_a_passage_of_a_hidden_document(client, course, student, lecturer):
    document = ingest(course, "week-01.md", WEEK1).document
    Document.objects.filter(pk=document.pk).update(visible=False)
    chunk = document.chunks.first()
    client.force_login(student)
    assert client.get(reverse("rag:api_passage", args=[chunk.pk])).status_code == 404
    assert client.get(reverse("rag:passage", args=[chunk.pk])).status_code == 404
    client.force_login(lecturer)
    assert client.get(reverse("rag:api_passage", args=[chunk.pk])).json()["text"] == chunk.text


def test_the_passage_page_highlights_the_quoted_passage(client, course, student):
    document = ingest(course, "week-01.md", WEEK1).document
    chunk = document.chunks.get(ordinal=0)
    client.force_login(student)
    page = client.get(reverse("rag:passage", args=[chunk.pk])).content.decode()
    assert '<blockquote id="quoted"' in page and "Tom Mitchell, 1997" in page


def test_an_outsider_cannot_open_a_passage(client, course, outsider):
    chunk = ingest(course, "week-01.md", WEEK1).document.chunks.first()
    client.force_login(outsider)
    assert client.get(reverse("rag:api_passage", args=[chunk.pk])).status_code == 404


def test_students_list_only_visible_documents(client, course, student):
    ingest(course, "week-01.md", WEEK1)
    hidden = ingest(course, "draft.md", b"# Draft\n\nNot yet.").document
    Document.objects.filter(pk=hidden.pk).update(visible=False)
    client.force_login(student)
    body = client.get(reverse("rag:api_documents", args=[course.pk])).json()
    assert [d["filename"] for d in body["documents"]] == ["week-01.md"]


def test_the_documents_page_and_stats_are_for_staff_only(client, course, student, lecturer):
    client.force_login(student)
    assert client.get(reverse("rag:documents", args=[course.pk])).status_code == 403
    assert client.get(reverse("rag:api_stats", args=[course.pk])).status_code == 403
    client.force_login(lecturer)
    assert client.get(reverse("rag:documents", args=[course.pk])).status_code == 200
    assert client.get(reverse("rag:api_stats", args=[course.pk])).json()["documents"] == 0


def test_a_sync_without_an_lms_connection_is_refused(client, course, lecturer):
    client.force_login(lecturer)
    response = client.post(
        reverse("rag:api_sync", args=[course.pk]), {}, content_type="application/json"
    )
    assert (
        response.status_code == 400 and "No LMS connection" in response.json()["error"]["message"]
    )


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_indexed_in_the_background_and_the_job_reports_progress(
    client, course, lecturer
):
    client.force_login(lecturer)
    response = _upload(client, course, ("week-01.md", WEEK1), ("broken.pdf", b"%PDF-1.4 nothing"))
    tasks.ingestion_idle(timeout=120)
    job = client.get(response["Location"]).json()
    assert job["status"] == JobStatus.SUCCEEDED and job["progress"] == 1.0
    outcomes = {f["name"]: (f["status"], f["error"]) for f in job["files"]}
    assert outcomes["week-01.md"] == ("indexed", "")
    assert outcomes["broken.pdf"][0] == "failed" and "broken.pdf" in outcomes["broken.pdf"][1]
