"""The question set stays answerable by the material it ships with, and metrics add up."""

from django.conf import settings

from rag.benchmark import quality


def test_every_expected_snippet_is_in_a_passage_of_the_corpus():
    corpus = quality.load_corpus(
        budget=settings.RAG_CHUNK_TOKENS, overlap=settings.RAG_CHUNK_OVERLAP
    )
    questions = quality.load_questions()
    items = questions["questions"] + questions["follow_ups"]
    assert {q["lang"] for q in items} == {"en", "de"}
    assert all(quality.relevant(corpus, q["expect"]) for q in items)


def test_metrics_count_hits_at_each_cutoff():
    metrics = quality._metrics([1, 3, None, 7])
    assert metrics == {"hit@1": 0.25, "hit@5": 0.5, "hit@10": 0.75, "mrr": (1 + 1 / 3 + 1 / 7) / 4}


def test_calibration_picks_the_threshold_that_separates_best():
    result = quality.calibrate([0.9, 0.85, 0.84], [0.7, 0.75, 0.86])
    assert result["best_threshold"] == 0.84
    assert quality.at_threshold(result, 0.8) == {
        "threshold": 0.8,
        "answerable_kept": 1.0,
        "unanswerable_refused": 2 / 3,
    }
