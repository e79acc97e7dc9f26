"""The lexical half of hybrid search: BM25 (``bm25s``) over a course's passages.

One index per course and ``version`` of the course index (which grows whenever the
course's passages change), so a stale index is never used. Built from the passages in the
database, saved under ``CAIPI_DATA_DIR/rag/bm25/course-<id>/v<version>`` with the count and
highest id of its passages (checked against the database when opened) (written to a
temporary folder, then renamed: readers never see half an index) and opened
memory-mapped by every process that searches the course, then kept in a small per-process
cache. Ingestion saves the new version when a job ends, so the first question after new
notes does not pay for building it (seconds at 100k passages). English and German stop
words are dropped; words are lower-cased; no stemming (it is language-specific and the
notes mix languages).
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN_PLUS, STOPWORDS_GERMAN
from django.conf import settings

logger = logging.getLogger(__name__)

STOPWORDS = sorted(set(STOPWORDS_EN_PLUS) | set(STOPWORDS_GERMAN))
CACHED_COURSES = 32


@dataclass
class LexicalIndex:
    """BM25 over one course's passages; row ``i`` is passage ``chunk_ids[i]`` of document
    ``document_ids[i]``."""

    chunk_ids: np.ndarray
    document_ids: np.ndarray
    model: bm25s.BM25 | None
    _masks: OrderedDict[frozenset[int], np.ndarray] = field(default_factory=OrderedDict)
    _by_chunk: tuple[np.ndarray, np.ndarray] | None = None

    def documents_of(self, chunk_ids: list[int]) -> list[int]:
        """The document of each passage in ``chunk_ids``; -1 for a passage this index does
        not hold (added after its version). Saves asking the vector store for metadata."""
        if self._by_chunk is None:
            order = np.argsort(self.chunk_ids, kind="stable")
            self._by_chunk = (self.chunk_ids[order], self.document_ids[order])
        ids, documents = self._by_chunk
        if not len(ids) or not chunk_ids:
            return [-1] * len(chunk_ids)
        wanted = np.asarray(chunk_ids, dtype=np.int64)
        at = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
        return np.where(ids[at] == wanted, documents[at], -1).tolist()

    def _mask(self, documents: list[int]) -> np.ndarray:
        """1.0 for the passages of ``documents``, else 0.0; the last few kept (the students
        of a course share one set of visible documents)."""
        key = frozenset(documents)
        with _lock:
            mask = self._masks.get(key)
        if mask is None:
            wanted = np.asarray(sorted(key), dtype=np.int64)
            mask = np.isin(self.document_ids, wanted).astype(np.float32)
            with _lock:
                self._masks[key] = mask
                while len(self._masks) > 8:
                    self._masks.popitem(last=False)
        return mask

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
            mask = self._mask(documents)
            if not mask.any():
                return []
        scores = self.model.get_scores(tokens[0], weight_mask=mask)
        # The best ``limit`` among the passages that contain a word of the query (about 1%
        # of them): selecting among all 100k scores cost ~4 ms of CPU a query, this ~0.3.
        # Equal scores: the earlier passage first.
        rows = np.flatnonzero(scores > 0)
        if len(rows) > limit:  # keep those at least as good as the limit-th (ties included)
            cut = np.partition(scores[rows], -limit)[-limit]
            rows = rows[scores[rows] >= cut]
        rows = rows[np.lexsort((rows, -scores[rows]))][:limit]
        return [(int(self.chunk_ids[row]), float(scores[row])) for row in rows]

    def coverage(self, query: str, text: str) -> float:
        """How much of the query's weight ``text`` contains: the IDF-weighted share of the
        query's words (stop words dropped) that occur in it, 0..1. A word the notes never
        use weighs most, so a question about something absent scores low."""
        words = _words(query)
        if not words:
            return 0.0
        present = set(_words(text))
        weights = [self.idf(word) for word in words]
        total = sum(weights)
        found = sum(w for word, w in zip(words, weights, strict=True) if word in present)
        return found / total if total else 0.0

    def idf(self, word: str) -> float:
        """BM25's inverse document frequency of ``word`` in this course's passages."""
        n = len(self.chunk_ids)
        df = 0
        if self.model is not None:
            column = self.model.vocab_dict.get(word)
            if column is not None:
                indptr = self.model.scores["indptr"]
                df = int(indptr[column + 1] - indptr[column])
        return float(np.log(1 + (n - df + 0.5) / (df + 0.5)))


def _words(text: str) -> list[str]:
    tokens = bm25s.tokenize(text, stopwords=STOPWORDS, show_progress=False, return_ids=False)
    return list(tokens[0]) if tokens else []


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


def folder(course_id: int, version: int) -> Path:
    """Where the course's index of this version is saved."""
    return Path(settings.RAG_LEXICAL_PATH) / f"course-{course_id}" / f"v{version}"


def fingerprint(index: LexicalIndex) -> dict[str, int]:
    """What identifies the passages an index was built from: their count and highest id."""
    n = len(index.chunk_ids)
    return {"chunks": n, "max_chunk_id": int(index.chunk_ids.max()) if n else 0}


def save(index: LexicalIndex, course_id: int, version: int) -> Path:
    """Write ``index`` for this course and version atomically; drop older versions."""
    target = folder(course_id, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".v{version}-", dir=target.parent))
    try:
        np.save(work / "chunk_ids.npy", index.chunk_ids)
        np.save(work / "document_ids.npy", index.document_ids)
        (work / "fingerprint.json").write_text(json.dumps(fingerprint(index)))
        if index.model is not None:
            index.model.save(work / "bm25", show_progress=False)
        if target.exists():  # another process saved the same version first
            shutil.rmtree(work, ignore_errors=True)
        else:
            work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for other in target.parent.iterdir():
        name = other.name
        if name.startswith("v") and name[1:].isdigit() and int(name[1:]) < version:
            shutil.rmtree(other, ignore_errors=True)
    return target


def load(course_id: int, version: int, expect: dict[str, int]) -> LexicalIndex | None:
    """The saved index of this course and version, memory-mapped; None if there is none or
    its fingerprint is not ``expect`` (e.g. a database restored under an old data folder)."""
    where = folder(course_id, version)
    if not (where / "fingerprint.json").exists():
        return None
    try:
        if json.loads((where / "fingerprint.json").read_text()) != expect:
            logger.warning("lexical index %s does not match the database; rebuilding", where)
            return None
        ids = np.load(where / "chunk_ids.npy")
        documents = np.load(where / "document_ids.npy")
        model = None
        if (where / "bm25").exists():
            model = bm25s.BM25.load(where / "bm25", mmap=True)
    except (OSError, ValueError):
        logger.warning("unreadable lexical index %s; rebuilding it", where, exc_info=True)
        return None
    return LexicalIndex(chunk_ids=ids, document_ids=documents, model=model)


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
