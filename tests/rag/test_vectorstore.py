"""Embedded Chroma in the data folder: one collection per course, our own vectors."""

import math

import pytest

from rag import vectorstore


def _unit(*values: float) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


@pytest.fixture
def store(settings, tmp_path):
    settings.CHROMA_URL = None
    settings.CHROMA_PATH = tmp_path / "chroma"
    yield
    vectorstore._client.cache_clear()


def test_the_nearest_chunk_comes_first_with_its_metadata(store):
    vectorstore.chunks_upsert(
        course_id=1,
        ids=["w1-0", "w2-0"],
        texts=["Supervised learning uses labels.", "Gradient descent steps downhill."],
        embeddings=[_unit(1, 0, 0), _unit(0, 1, 0)],
        metadatas=[{"document": "week-01.md"}, {"document": "week-02.md"}],
    )
    hits = vectorstore.chunks_query(course_id=1, embedding=_unit(0.1, 1, 0), limit=2)
    assert [hit.id for hit in hits] == ["w2-0", "w1-0"]
    assert hits[0].metadata == {"document": "week-02.md"}
    assert hits[0].text == "Gradient descent steps downhill."


def test_a_query_without_texts_and_metadata_finds_the_same_chunks_at_the_same_distances(store):
    vectorstore.chunks_upsert(
        course_id=1,
        ids=["w1-0", "w2-0", "w3-0"],
        texts=["Supervised learning.", "Gradient descent.", "Clustering."],
        embeddings=[_unit(1, 0, 0), _unit(0, 1, 0), _unit(1, 1, 1)],
        metadatas=[{"document_id": 1}, {"document_id": 2}, {"document_id": 3}],
    )
    full = vectorstore.chunks_query(course_id=1, embedding=_unit(0.2, 1, 0), limit=3)
    bare = vectorstore.chunks_query(
        course_id=1, embedding=_unit(0.2, 1, 0), limit=3, texts=False, metadata=False
    )
    assert [(h.id, h.distance) for h in bare] == [(h.id, h.distance) for h in full]
    assert all(h.text == "" and h.metadata == {} for h in bare)


def test_one_course_never_sees_another_courses_notes(store):
    vectorstore.chunks_upsert(
        course_id=1, ids=["a"], texts=["ML notes"], embeddings=[_unit(1, 0)], metadatas=[{"p": 1}]
    )
    vectorstore.chunks_upsert(
        course_id=2,
        ids=["b"],
        texts=["History notes"],
        embeddings=[_unit(1, 0)],
        metadatas=[{"p": 1}],
    )
    assert [hit.text for hit in vectorstore.chunks_query(course_id=2, embedding=_unit(1, 0))] == [
        "History notes"
    ]


def test_the_embedded_store_persists_in_the_data_folder(store, settings):
    vectorstore.chunks_upsert(
        course_id=3, ids=["c"], texts=["kept"], embeddings=[_unit(1, 1)], metadatas=[{"p": 1}]
    )
    vectorstore._client.cache_clear()
    assert vectorstore.chunks_query(course_id=3, embedding=_unit(1, 1))[0].text == "kept"
    assert (settings.CHROMA_PATH / "chroma.sqlite3").exists()


def test_forgetting_a_course_removes_its_collection(store):
    vectorstore.chunks_upsert(
        course_id=4, ids=["d"], texts=["gone"], embeddings=[_unit(1, 0)], metadatas=[{"p": 1}]
    )
    vectorstore.course_forget(course_id=4)
    assert vectorstore.chunks_query(course_id=4, embedding=_unit(1, 0)) == []


def test_a_course_deleted_by_another_process_is_found_again_when_re_created(store):
    vectorstore.chunks_upsert(
        course_id=4, ids=["old"], texts=["old"], embeddings=[_unit(1, 0)], metadatas=[{"p": 1}]
    )
    assert vectorstore.chunks_count(course_id=4) == 1  # this process now holds a handle
    other = vectorstore.chroma_client()  # another process deletes and re-creates it
    other.delete_collection("course-4")
    other.create_collection("course-4", embedding_function=None, metadata={"hnsw:space": "cosine"})
    other.get_collection("course-4").upsert(
        ids=["new"], documents=["new"], embeddings=[_unit(0, 1)], metadatas=[{"p": 2}]
    )
    assert [hit.id for hit in vectorstore.chunks_query(course_id=4, embedding=_unit(0, 1))] == [
        "new"
    ]
