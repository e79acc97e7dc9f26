"""The course's BM25 index: saved when ingestion ends, opened memory-mapped, never stale."""

import numpy as np

from rag import jobs, lexical, services
from rag.models import CourseIndex
from rag.retrieval import lexical_index, passages_search
from tests.rag.conftest import NOTES_DIR

WEEK1 = (NOTES_DIR / "week-01-what-is-learning.md").read_bytes()
WEEK2 = (NOTES_DIR / "week-02-linear-regression.md").read_bytes()


def _upload(course, lecturer, files):
    job = services.documents_upload(
        course=course, files=[services.Upload(n, d) for n, d in files.items()], actor=lecturer
    )
    jobs.ingestion_job_run(job_id=job.pk)


def _version(course):
    return CourseIndex.objects.get(course=course).version


def test_a_finished_ingestion_saves_the_index_so_the_first_search_only_opens_it(
    course, lecturer, student
):
    _upload(course, lecturer, {"week-01.md": WEEK1})
    assert (lexical.folder(course.pk, _version(course)) / "fingerprint.json").exists()
    lexical.forget_all()  # a fresh process: nothing in memory
    question = "Who defined machine learning, according to the week 1 notes?"
    result = passages_search(
        course=course, user=student, query=question, k=3, apply_threshold=False
    )
    assert any("Tom Mitchell" in p.text for p in result.passages)
    opened = lexical.cached(course.pk, _version(course))
    assert isinstance(opened.model.scores["data"], np.memmap)  # opened, not built


def test_new_notes_make_a_new_version_and_the_old_one_is_removed(course, lecturer, student):
    _upload(course, lecturer, {"week-01.md": WEEK1})
    first = _version(course)
    _upload(course, lecturer, {"week-02.md": WEEK2})
    assert _version(course) > first
    assert not lexical.folder(course.pk, first).exists()
    lexical.forget_all()
    found = lexical_index(course.pk, _version(course)).search("gradient descent", limit=3)
    assert found  # week 2's passages are in the new version's index


def test_a_saved_index_that_does_not_match_the_database_is_rebuilt(course, lecturer, student):
    _upload(course, lecturer, {"week-01.md": WEEK1})
    version = _version(course)
    stale = lexical.build([999_999], [1], ["Nothing of week one"])
    target = lexical.folder(course.pk, version)
    for path in sorted(target.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    target.rmdir()
    lexical.save(stale, course.pk, version)  # e.g. an old data folder under a new database
    lexical.forget_all()
    found = lexical_index(course.pk, version).search("Tom Mitchell", limit=3)
    assert found and 999_999 not in [chunk_id for chunk_id, _ in found]


def test_the_index_tells_each_passages_document_and_knows_when_it_does_not_hold_one():
    index = lexical.build([30, 10, 20], [3, 1, 2], ["gamma text", "alpha text", "beta text"])
    assert index.documents_of([20, 30, 10, 99, 5]) == [2, 3, 1, -1, -1]
    assert index.documents_of([]) == []


def test_the_best_passages_come_first_and_equal_scores_keep_the_passages_order():
    texts = ["kernel trick", "kernel", "nothing here", "kernel", "kernel", "the kernel trick"]
    index = lexical.build([1, 2, 3, 4, 5, 6], [1] * 6, texts)
    found = index.search("kernel trick", limit=3)
    assert [chunk_id for chunk_id, _ in found][:2] in ([1, 6], [6, 1])
    assert found[0][1] >= found[1][1] > found[2][1] > 0
    assert found[2][0] == 2  # the first of the three passages that score the same
    assert [c for c, _ in index.search("kernel", limit=10)] == [2, 4, 5, 1, 6]
    assert index.search("kernel", limit=10, documents=[2]) == []
