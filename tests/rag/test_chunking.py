"""Chunking keeps sections apart, respects the token budget and overlaps within a section."""

import itertools

from rag.chunking import HEADING_SEPARATOR, chunk_blocks, estimate_tokens
from rag.parsing import Block

SENTENCES = [
    f"Sentence number {i} explains one more idea about gradient descent." for i in range(40)
]


def test_a_new_heading_always_starts_a_new_passage():
    blocks = [Block("Short intro.", ("Week 1",)), Block("Another short one.", ("Week 1", "Kinds"))]
    passages = chunk_blocks(blocks, budget=200, overlap=20)
    assert [(p.text, p.heading) for p in passages] == [
        ("Short intro.", "Week 1"),
        ("Another short one.", f"Week 1{HEADING_SEPARATOR}Kinds"),
    ]


def test_passages_stay_within_the_budget_and_cover_every_sentence():
    passages = chunk_blocks([Block(" ".join(SENTENCES), ("Week 2",), page=3)], budget=60, overlap=0)
    assert len(passages) > 3
    assert all(p.tokens <= 60 for p in passages)
    joined = " ".join(p.text.replace("\n", " ") for p in passages)
    assert all(sentence in joined for sentence in SENTENCES)
    assert {p.page for p in passages} == {3}


def test_a_passage_repeats_the_end_of_the_one_before_it():
    passages = chunk_blocks([Block(" ".join(SENTENCES), ("Week 2",))], budget=60, overlap=20)
    for before, after in itertools.pairwise(passages):
        last_sentence = before.text.split("\n")[-1]
        assert after.text.startswith(last_sentence)


def test_a_sentence_longer_than_the_budget_is_split_at_words():
    long_sentence = " ".join(["word"] * 400)
    passages = chunk_blocks([Block(long_sentence)], budget=50, overlap=0)
    assert len(passages) > 5
    assert all(p.tokens <= 50 for p in passages)


def test_pages_spanned_are_recorded():
    blocks = [Block("Page one text.", ("A",), page=1), Block("Page two text.", ("A",), page=2)]
    (passage,) = chunk_blocks(blocks, budget=200, overlap=0)
    assert (passage.page, passage.page_end) == (1, 2)


def test_token_estimates_count_words_and_punctuation():
    assert estimate_tokens("") == 0
    assert estimate_tokens("Tom Mitchell, 1997.") == 7  # 5 pieces x 1.3, rounded up
