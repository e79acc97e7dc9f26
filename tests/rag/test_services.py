"""Ingestion stores passages atomically, skips unchanged files, and deletes cleanly."""

import pytest

from caipi.core.errors import PayloadTooLarge
from rag import services, vectorstore
from rag.embeddings import configured_model_name
from rag.models import Chunk, CourseIndex, Document
from rag.parsing import NoText
from tests.rag.conftest import NOTES_DIR, ingest, make_pdf, make_scanned_pdf

WEEK1 = (NOTES_DIR / "week-01-what-is-learning.md").read_bytes()


def _vector_ids(course_id: int) -> set[str]:
    return set(vectorstore.course_collection(course_id=course_id).get()["ids"])


def test_a_document_is_stored_with_its_passages_in_the_database_and_the_vector_store(course):
    outcome = ingest(course, "week-01-what-is-learning.md", WEEK1)
    document = outcome.document
    assert outcome.status == "indexed"
    assert (
        document.title.startswith("Week 1") and document.week == 1 and document.kind == "markdown"
    )
    chunks = list(Chunk.objects.filter(document=document))
    assert len(chunks) == document.chunk_count > 0
    assert _vector_ids(course.pk) == {str(c.pk) for c in chunks}
    index = CourseIndex.objects.get(course=course)
    assert index.embedding_model == configured_model_name() and index.version == 1
    assert vectorstore.collection_model(course_id=course.pk) == configured_model_name()


def test_an_unchanged_file_is_not_embedded_again(course):
    first = ingest(course, "week-01-what-is-learning.md", WEEK1)
    ids = set(Chunk.objects.values_list("pk", flat=True))
    again = ingest(course, "week-01-what-is-learning.md", WEEK1, section="Week 1: basics")
    assert again.status == "unchanged" and again.document.pk == first.document.pk
    assert set(Chunk.objects.values_list("pk", flat=True)) == ids
    assert again.document.section == "Week 1: basics"  # the metadata is refreshed all the same
    assert CourseIndex.objects.get(course=course).version == 1


def test_a_changed_file_replaces_the_old_passages(course):
    ingest(course, "week-01.md", WEEK1)
    old = set(Chunk.objects.values_list("pk", flat=True))
    outcome = ingest(course, "week-01.md", WEEK1 + b"\n\n## New section\n\nBrand new text.\n")
    new = set(Chunk.objects.filter(document=outcome.document).values_list("pk", flat=True))
    assert outcome.status == "indexed" and not old & new
    assert Document.objects.count() == 1
    assert any("Brand new text" in c.text for c in Chunk.objects.all())


def test_a_failed_file_leaves_no_passages_and_keeps_the_previous_version(course, settings):
    ingest(course, "week-01.md", WEEK1)
    before = set(Chunk.objects.values_list("pk", "text"))
    settings.CHROMA_URL = "http://127.0.0.1:9"  # the vector store is down
    with pytest.raises(Exception):  # noqa: B017 - whatever the client raises
        ingest(course, "week-01.md", WEEK1 + b"\n\nChanged.\n")
    with pytest.raises(Exception):  # noqa: B017
        ingest(course, "week-02.md", b"# Week 2\n\nNew notes.\n")
    settings.CHROMA_URL = None
    assert set(Chunk.objects.values_list("pk", "text")) == before
    assert list(Document.objects.values_list("filename", flat=True)) == ["week-01.md"]
    assert _vector_ids(course.pk) == {str(pk) for pk, _ in before}


def test_an_unreadable_file_stores_nothing(course):
    with pytest.raises(NoText):
        ingest(course, "scan.pdf", make_scanned_pdf())
    assert not Document.objects.exists() and not Chunk.objects.exists()


def test_a_file_over_the_size_limit_is_refused(course, settings):
    settings.RAG_MAX_UPLOAD_BYTES = 2048
    with pytest.raises(PayloadTooLarge):
        ingest(course, "big.md", b"# Big\n\n" + b"x " * 2000)
    assert not Document.objects.exists()


def test_pdf_passages_carry_their_pages(course):
    data = make_pdf([("Intro", "Learning from data."), ("Evaluation", "Precision and recall.")])
    document = ingest(course, "lecture.pdf", data).document
    assert list(document.chunks.values_list("heading", "page")) == [("Intro", 1), ("Evaluation", 2)]


def test_deleting_a_document_removes_its_passages_everywhere(course, lecturer):
    first = ingest(course, "week-01.md", WEEK1).document
    second = ingest(course, "week-02.md", b"# Week 2\n\nGradient descent.\n").document
    kept = {str(pk) for pk in second.chunks.values_list("pk", flat=True)}
    services.document_delete(document=first, actor=lecturer)
    assert not Chunk.objects.filter(document_id=first.pk).exists()
    assert _vector_ids(course.pk) == kept


def test_a_student_cannot_delete_a_document(course, student):
    from caipi.core.errors import PermissionDenied

    document = ingest(course, "week-01.md", WEEK1).document
    with pytest.raises(PermissionDenied):
        services.document_delete(document=document, actor=student)
    assert Document.objects.filter(pk=document.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_a_course_removes_its_collection(course):
    ingest(course, "week-01.md", WEEK1)
    course_id = course.pk
    course.delete()
    names = [c.name for c in vectorstore.chroma_client().list_collections()]
    assert f"course-{course_id}" not in names


def test_a_different_embedding_model_re_embeds_instead_of_mixing_vectors(course):
    ingest(course, "week-01.md", WEEK1)
    CourseIndex.objects.filter(course=course).update(embedding_model="another/model")
    Document.objects.update(embedding_model="another/model")
    vectorstore.course_forget(course_id=course.pk)
    vectorstore.course_collection(course_id=course.pk, embedding_model="another/model")
    assert services.course_reindex(course=course) == Chunk.objects.count()
    assert CourseIndex.objects.get(course=course).embedding_model == configured_model_name()
    assert vectorstore.collection_model(course_id=course.pk) == configured_model_name()
    assert _vector_ids(course.pk) == {str(pk) for pk in Chunk.objects.values_list("pk", flat=True)}


def test_weeks_are_read_from_names():
    assert services.week_from("week-03-evaluation.md") == 3
    assert services.week_from("Woche 12: Klausur") == 12
    assert services.week_from("syllabus.pdf") is None
