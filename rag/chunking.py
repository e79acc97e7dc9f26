"""Structure-aware chunking: passages that stay inside one section, within a token budget.

1. Blocks are grouped by their heading path: a new heading always starts a new passage,
   so a passage never mixes two sections.
2. Inside a section, blocks are packed into a passage until the next would pass the
   budget; a block longer than the budget is split at sentence ends (a sentence longer
   than the budget, at word boundaries).
3. A passage that continues a section starts with the last sentences of the one before
   it, up to ``overlap`` tokens, so a fact split across the boundary is found whole.

Tokens are estimated (words and punctuation, times 1.3 for sub-word pieces) rather than
counted with the embedding model's tokenizer: cheap, and on the safe side for e5's limit
of 512 tokens when the budget is a few hundred.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rag.parsing import Block

HEADING_SEPARATOR = " \u203a "  # a single right-pointing angle quotation mark
_PIECES = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+(?=[\"'„“(\[]?[A-ZÄÖÜ0-9])")


def estimate_tokens(text: str) -> int:
    """A cheap upper-leaning estimate of sub-word tokens in ``text``."""
    return math.ceil(len(_PIECES.findall(text)) * 1.3)


@dataclass(frozen=True)
class Passage:
    """A chunk ready to embed: its text, heading path and the pages it spans."""

    text: str
    heading: str
    page: int | None
    page_end: int | None
    tokens: int


def with_context(title: str, heading: str, text: str) -> str:
    """``text`` under its document title and heading path, the title said once (an H1 is
    often the title too): what is embedded and what the lexical index reads."""
    if title and heading.startswith(title):
        heading = heading[len(title) :].strip().removeprefix(HEADING_SEPARATOR.strip()).strip()
    context = HEADING_SEPARATOR.join(part for part in (title, heading) if part)
    return f"{context}\n{text}" if context else text


def _sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(text) if s.strip()]


def _pieces(block: Block, budget: int) -> Iterator[tuple[str, int | None]]:
    """The block as pieces of at most ``budget`` tokens (sentences, or runs of words)."""
    if estimate_tokens(block.text) <= budget:
        yield block.text, block.page
        return
    for sentence in _sentences(block.text):
        if estimate_tokens(sentence) <= budget:
            yield sentence, block.page
            continue
        words = sentence.split()
        step = max(1, int(budget / 1.3 / 1.2))
        for start in range(0, len(words), step):
            yield " ".join(words[start : start + step]), block.page


def _sections(blocks: Iterable[Block]) -> Iterator[tuple[tuple[str, ...], list[Block]]]:
    current: tuple[str, ...] | None = None
    group: list[Block] = []
    for block in blocks:
        if block.heading != current and group:
            yield current or (), group
            group = []
        current = block.heading
        group.append(block)
    if group:
        yield current or (), group


def _passage(pieces: list[tuple[str, int | None]], label: str) -> Passage:
    text = "\n".join(piece for piece, _ in pieces)
    pages = [page for _, page in pieces if page is not None]
    return Passage(
        text=text,
        heading=label,
        page=min(pages) if pages else None,
        page_end=max(pages) if pages else None,
        tokens=estimate_tokens(text),
    )


def chunk_blocks(blocks: Iterable[Block], *, budget: int, overlap: int) -> list[Passage]:
    """Passages of at most ``budget`` estimated tokens (see the module doc for the steps)."""
    passages: list[Passage] = []
    for heading, group in _sections(blocks):
        label = HEADING_SEPARATOR.join(heading)
        pieces: list[tuple[str, int | None]] = []
        used = 0
        carried = 0  # how many leading pieces were carried over as overlap
        for block in group:
            for piece, page in _pieces(block, budget):
                size = estimate_tokens(piece)
                if pieces and used + size > budget and len(pieces) > carried:
                    passages.append(_passage(pieces, label))
                    pieces, used = _overlap(pieces, overlap)
                    carried = len(pieces)
                    if used + size > budget:
                        pieces, used, carried = [], 0, 0
                pieces.append((piece, page))
                used += size
        if len(pieces) > carried:
            passages.append(_passage(pieces, label))
    return passages


def _overlap(pieces: list[tuple[str, int | None]], overlap: int) -> tuple[list, int]:
    """The trailing sentences of ``pieces`` that fit in ``overlap`` tokens."""
    if overlap <= 0:
        return [], 0
    last_text, last_page = pieces[-1]
    tail: list[tuple[str, int | None]] = []
    used = 0
    for sentence in reversed(_sentences(last_text)):
        size = estimate_tokens(sentence)
        if used + size > overlap:
            break
        tail.insert(0, (sentence, last_page))
        used += size
    return tail, used
