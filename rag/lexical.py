"""The lexical half of hybrid search: BM25 (``bm25s``) over a course's passages.

One index per course, built in memory from the passages in the database and kept per
process, keyed by the course index's ``version`` (which grows whenever the course's
passages change), so a stale index is never used. English and German stop words are
dropped; words are lower-cased; no stemming (it is language-specific and the notes mix
languages).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_GERMAN

STOPWORDS = sorted(set(STOPWORDS_EN_PLUS) | set(STOPWORDS_GERMAN))
CACHED_COURSES = 32


@dataclass
class LexicalIndex:
    """BM25 over one course's passages; row ``i`` is passage ``chunk_ids[i]`` of document
    ``document_ids[i]``."""

    chunk_ids: np.ndarray
    document_ids: np.ndarray
    model: bm25s.BM25 | None

    def search(
        self, query: str, *, limit: int, documents: list[int] | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) best first, only in ``documents`` when given."""
        if self.model is None or not len(self.chunk_ids):
            return []
        tokens = bm25s.tokenize(query, stopwords=STOPWORDS, show_progress=False, return_ids=False)
        if not tokens or not tokens[0]:
            return []
        mask = None
        if documents is not None:
            wanted = np.asarray(documents, dtype=np.int64)
            mask = np.isin(self.document_ids, wanted).astype(np.float32)
            if not mask.any():
                return []
        limit = min(limit, len(self.chunk_ids))
        rows, scores = self.model.retrieve(
            tokens, k=limit, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [
            (int(self.chunk_ids[row]), float(score))
            for row, score in zip(rows[0], scores[0], strict=True)
            if score > 0
        ]


def build(chunk_ids: list[int], document_ids: list[int], texts: list[str]) -> LexicalIndex:
    """A BM25 index of ``texts`` (title, heading and text of each passage)."""
    ids = np.asarray(chunk_ids, dtype=np.int64)
    docs = np.asarray(document_ids, dtype=np.int64)
    if not texts:
        return LexicalIndex(chunk_ids=ids, document_ids=docs, model=None)
    tokens = bm25s.tokenize(texts, stopwords=STOPWORDS, show_progress=False)
    model = bm25s.BM25()
    model.index(tokens, show_progress=False)
    return LexicalIndex(chunk_ids=ids, document_ids=docs, model=model)


_cache: OrderedDict[tuple[int, int], LexicalIndex] = OrderedDict()
_lock = threading.Lock()


def cached(course_id: int, version: int) -> LexicalIndex | None:
    with _lock:
        index = _cache.get((course_id, version))
        if index is not None:
            _cache.move_to_end((course_id, version))
        return index


def remember(course_id: int, version: int, index: LexicalIndex) -> None:
    with _lock:
        for key in [key for key in _cache if key[0] == course_id]:
            del _cache[key]
        _cache[(course_id, version)] = index
        while len(_cache) > CACHED_COURSES:
            _cache.popitem(last=False)


def forget_all() -> None:
    with _lock:
        _cache.clear()
