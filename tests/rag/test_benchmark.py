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


def _signals(*similarities, gap=0.0, coverage=0.0):
    return [{"similarity": s, "gap": gap, "coverage": coverage} for s in similarities]


def test_calibration_picks_the_threshold_that_separates_best():
    result = quality.calibrate(_signals(0.9, 0.85, 0.84), _signals(0.7, 0.75, 0.86))
    assert result["best_threshold"] == 0.84
    assert quality.at_threshold(result, 0.8) == {
        "threshold": 0.8,
        "answerable_kept": 1.0,
        "unanswerable_refused": 2 / 3,
    }


def test_the_combined_rule_separates_what_similarity_alone_cannot():
    # The unanswerable question's passage is as similar as an answer, but it stands out
    # from its neighbours less and shares fewer of the question's rarer words.
    answerable = [
        {"similarity": 0.84, "gap": 0.05, "coverage": 1.0},
        {"similarity": 0.86, "gap": 0.04, "coverage": 0.6},
    ]
    unanswerable = [{"similarity": 0.85, "gap": 0.02, "coverage": 0.1}]
    assert quality.calibrate(answerable, unanswerable)["best_balanced_accuracy"] < 1
    best = quality.relevance_report(answerable, unanswerable, "some-model")["best"]
    assert best["answerable_kept"] == 1.0 and best["unanswerable_refused"] == 1.0
    assert best["margin"] > 0
