"""Runs the two parts of the benchmark and prints their tables (Markdown, for the docs)."""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from typing import Any

import numpy as np
from django.conf import settings

from rag.benchmark import quality as q


def _print(text: str = "") -> None:
    print(text, flush=True)


def _conditions() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0, 0, 0)
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.1f} at start, "
        f"Python {platform.python_version()}, embedding threads {settings.RAG_EMBEDDING_THREADS}"
    )


def _rewriter(args: argparse.Namespace) -> Any:
    if not args.rewrite_url:
        return None
    import openai

    from rag.assistant import rewrite_request

    client = openai.OpenAI(base_url=args.rewrite_url, api_key=args.rewrite_key)

    def rewrite(conversation: list[dict[str, str]]) -> str:
        messages: Any = rewrite_request(conversation)
        answer = client.chat.completions.create(
            model=args.rewrite_model, messages=messages, max_tokens=64
        )
        return answer.choices[0].message.content or ""

    return rewrite


def quality(args: argparse.Namespace) -> dict[str, Any]:
    questions = q.load_questions()
    corpus = q.load_corpus(budget=settings.RAG_CHUNK_TOKENS, overlap=settings.RAG_CHUNK_OVERLAP)
    _print(
        f"## Retrieval quality\n\n{len(corpus.texts)} passages from {len(q.corpus_files())} files; "
        f"{len(questions['questions'])} questions, {len(questions['follow_ups'])} follow-ups, "
        f"{len(questions['unanswerable'])} unanswerable. {_conditions()}\n"
    )
    results = {}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        evaluation = q.Evaluation(corpus, q.candidate(name, threads=settings.RAG_EMBEDDING_THREADS))
        reranker = (
            q.http_reranker(args.rerank_url, args.rerank_model, args.rerank_key)
            if args.rerank_url
            else None
        )
        result = q.evaluate(evaluation, questions, rewriter=_rewriter(args), reranker=reranker)
        results[name] = result
        _quality_tables(name, result)
    return results


def _quality_tables(name: str, result: dict[str, Any]) -> None:
    _print(f"### {name}\n")
    _print("| mode | questions | hit@1 | hit@5 | hit@10 | MRR |")
    _print("|---|---|---|---|---|---|")
    for mode, groups in result["modes"].items():
        for group in ("all", "en", "de"):
            m = groups[group]
            _print(
                f"| {mode} | {group} ({m['n']}) | {m['hit@1']:.0%} | {m['hit@5']:.0%} | "
                f"{m['hit@10']:.0%} | {m['mrr']:.3f} |"
            )
    _print("\nFollow-up questions (hybrid):\n")
    _print("| query | hit@1 | hit@5 | MRR |")
    _print("|---|---|---|---|")
    for variant, m in result["follow_ups"].items():
        _print(f"| {variant} ({m['n']}) | {m['hit@1']:.0%} | {m['hit@5']:.0%} | {m['mrr']:.3f} |")
    if "reranked_questions" in result and "hybrid + rerank always" in result["modes"]:
        _print(
            f"\nRe-ranking when uncertain asked the reranker for "
            f"{result['reranked_questions']} of {result['modes']['hybrid']['all']['n']} questions."
        )
    cal = result["calibration"]
    at = q.at_threshold(cal, 0.822)
    emb = result["embedding"]
    _print(
        f"\nPlain similarity threshold (the earlier rule): best separation at cosine "
        f"{cal['best_threshold']} (balanced accuracy {cal['best_balanced_accuracy']:.0%}); at "
        f"0.822: {at['answerable_kept']:.0%} of answerable questions keep their passages, "
        f"{at['unanswerable_refused']:.0%} of unanswerable ones are refused."
    )
    for label, rule in result["relevance"].items():
        extra = (
            f" (gap weight {rule['gap_weight']}, coverage weight {rule['coverage_weight']}, "
            f"threshold {rule['threshold']})"
            if label == "best"
            else ""
        )
        _print(
            f"Combined evidence, {label} rule{extra}: {rule['answerable_kept']:.0%} of answerable "
            f"questions answered, {rule['unanswerable_refused']:.0%} of unanswerable refused; "
            f"margin {rule['margin']} (lowest answered {rule['lowest_answerable_kept']}, "
            f"highest unanswerable {rule['highest_unanswerable']})."
        )
    _print(
        f"Embedding: {emb['passages_per_second']:.1f} passages/s, "
        f"query p50 {emb['query_ms_p50']:.1f} ms.\n"
    )


# --- speed --------------------------------------------------------------------------------


def _pdf(pages: int, paragraphs: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=10)
    rng = random.Random(7)
    for number in range(pages):
        pdf.add_page()
        if number % 5 == 0:
            pdf.start_section(f"Section {number // 5 + 1}")
        text = " ".join(rng.sample(paragraphs, 3))[:2600]
        pdf.multi_cell(w=0, text=text.encode("latin-1", "replace").decode("latin-1"))
    return bytes(pdf.output())


def speed(args: argparse.Namespace) -> dict[str, Any]:

    corpus = q.load_corpus(budget=settings.RAG_CHUNK_TOKENS, overlap=settings.RAG_CHUNK_OVERLAP)
    _print(f"## Speed (provisional: shared machine)\n\n{_conditions()}\n")
    results: dict[str, Any] = {"conditions": _conditions()}
    pages = 40 if args.quick else args.pages
    data = _pdf(pages, [t for t in corpus.texts if len(t) > 200])
    from rag import parsing

    started = time.perf_counter()
    parsing.parse("bench.pdf", data)
    parse_seconds = time.perf_counter() - started
    results["ingestion"] = {"pages": pages, "parse_pages_per_second": pages / parse_seconds}
    _print(f"Parsing a {pages}-page text PDF: {pages / parse_seconds:.0f} pages/s.\n")
    variants = [("bundled", None)]
    if args.embedding_url:
        variants.append(("api", args.embedding_url))
    for label, url in variants:
        results["ingestion"][label] = _ingest_once(
            course_label=f"ING-{label}", data=data, url=url, model=args.embedding_model, pages=pages
        )
    sizes = [10_000] if args.quick else [10_000, 100_000]
    results["search"] = {}
    _print(
        "| chunks | first search (builds and saves the lexical index) | first search in a "
        "fresh process (opens it) | search p50 | search p99 | repeated question p50 "
        "| assistant context p50 | search CPU p50 | assistant context CPU p50 |"
    )
    _print("|---|---|---|---|---|---|---|---|---|")
    for size in sizes:
        results["search"][size] = _search_latency(size, corpus, runs=30 if args.quick else 60)
        r = results["search"][size]
        _print(
            f"| {size:,} | {r['first_ms']:.0f} ms | {r['opened_ms']:.0f} ms | "
            f"{r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | {r['repeated_p50_ms']:.1f} ms | "
            f"{r['context_p50_ms']:.1f} ms | {r['cpu_p50_ms']:.1f} ms | "
            f"{r['context_cpu_p50_ms']:.1f} ms |"
        )
    _print()
    return results


def _ingest_once(
    *, course_label: str, data: bytes, url: str | None, model: str, pages: int
) -> dict[str, Any]:
    """End-to-end ingestion of the PDF (parse, chunk, embed, store) with one embedder."""
    from caipi.core.models import Course
    from rag import embeddings, services

    course = Course.objects.create(title=course_label, label=course_label)
    previous = (
        settings.RAG_EMBEDDING_URL,
        settings.RAG_EMBEDDING_MODEL,
        settings.RAG_EMBEDDING_API_KEY,
    )
    settings.RAG_EMBEDDING_URL, settings.RAG_EMBEDDING_MODEL = url, (model if url else None)
    settings.RAG_EMBEDDING_API_KEY = "benchmark" if url else None
    try:
        embedder = embeddings.embedder()
        embedder.embed_query("warm up")  # model load is not ingestion
        from rag import vectorstore

        vectorstore.chroma_client()  # nor is starting Chroma (once per process)
        embed_seconds = 0.0
        embed_passages = embedder.embed_passages

        def timed(texts: list[str]) -> list[list[float]]:
            nonlocal embed_seconds
            began = time.perf_counter()
            try:
                return embed_passages(texts)
            finally:
                embed_seconds += time.perf_counter() - began

        setattr(embedder, "embed_passages", timed)  # noqa: B010 - timing the real method
        started = time.perf_counter()
        try:
            outcome = services.document_ingest(
                course=course,
                item=services.item_for_upload("bench.pdf"),
                data=data,
                origin="upload",
            )
        finally:
            delattr(embedder, "embed_passages")
        seconds = time.perf_counter() - started
    finally:
        settings.RAG_EMBEDDING_URL, settings.RAG_EMBEDDING_MODEL, settings.RAG_EMBEDDING_API_KEY = (
            previous
        )
    name = outcome.document.embedding_model
    rest = max(seconds - embed_seconds, 1e-9)
    passages = outcome.document.chunk_count
    _print(
        f"Ingestion with {name} ({passages} passages): {pages / seconds:.1f} pages/s end to "
        f"end; embedding {passages / embed_seconds:.1f} passages/s ({embed_seconds:.1f} s); "
        f"everything else (parse, chunk, database, Chroma) {pages / rest:.1f} pages/s.\n"
    )
    return {
        "model": name,
        "passages": passages,
        "seconds": seconds,
        "embed_seconds": embed_seconds,
        "pages_per_second": pages / seconds,
        "passages_per_second_embedding": passages / embed_seconds,
        "pages_per_second_without_embedding": pages / rest,
    }


_BASE_VECTORS: dict[int, np.ndarray] = {}


def _search_latency(size: int, corpus: q.Corpus, *, runs: int) -> dict[str, float]:
    """Search a course of ``size`` synthetic passages as a student, query embedding included.

    Passage vectors are the corpus's real vectors with noise (embedding 100k real passages
    would take hours here); texts are shuffled sentences of the corpus, so BM25 sees a
    realistic vocabulary. Queries are the question set's, embedded for real each time.
    """
    from caipi.core.models import Course, CourseRole, Membership, User
    from rag import vectorstore
    from rag.assistant import assistant_context
    from rag.embeddings import embedder
    from rag.models import Chunk, CourseIndex, Document
    from rag.retrieval import passages_search

    rng = np.random.default_rng(size)
    model = embedder()
    if id(corpus) not in _BASE_VECTORS:  # embedded once per run, reused for each size
        _BASE_VECTORS[id(corpus)] = np.asarray(model.embed_passages(corpus.indexed))
    base = _BASE_VECTORS[id(corpus)]
    sentences = [s for t in corpus.texts for s in t.split(". ") if len(s) > 20]
    course = Course.objects.create(title=f"Bench {size}", label=f"B{size}")
    student = User.objects.create(username=f"bench-{size}")
    Membership.objects.create(user=student, course=course, role=CourseRole.LEARNER)
    documents = Document.objects.bulk_create(
        Document(
            course=course,
            title=f"Lecture {i}",
            filename=f"l{i}.pdf",
            kind="pdf",
            source_key=f"bench:{i}",
            content_hash="x",
            chunk_count=size // 100,
            embedding_model=model.name,
            visible=i % 10 != 0,
        )
        for i in range(100)
    )
    CourseIndex.objects.create(course=course, embedding_model=model.name, version=1)
    batch = 5000
    for start in range(0, size, batch):
        rows = []
        for i in range(start, min(size, start + batch)):
            text = ". ".join(rng.choice(sentences, 4))
            rows.append(
                Chunk(
                    document=documents[i % 100],
                    course_id=course.pk,
                    ordinal=i // 100,
                    text=text,
                    heading="Section",
                    tokens=80,
                )
            )
        chunks = Chunk.objects.bulk_create(rows)
        picks = base[rng.integers(0, len(base), len(chunks))]
        vectors = picks + rng.normal(0, 0.02, picks.shape)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectorstore.chunks_upsert(
            course_id=course.pk,
            ids=[str(c.pk) for c in chunks],
            texts=[c.text for c in chunks],
            embeddings=vectors.tolist(),
            metadatas=[{"document_id": c.document_id, "page": 0, "heading": ""} for c in chunks],
            embedding_model=model.name,
        )
    questions = [item["q"] for item in q.load_questions()["questions"]]
    started = time.perf_counter()
    passages_search(course=course, user=student, query=questions[0])
    first = (time.perf_counter() - started) * 1000
    from rag import lexical

    lexical.forget_all()  # as a fresh process: the index saved by the first search is opened
    started = time.perf_counter()
    passages_search(course=course, user=student, query=questions[1])
    opened = (time.perf_counter() - started) * 1000
    timings, context_timings, cpu, context_cpu = [], [], [], []
    queries = getattr(model, "queries", None)
    for i in range(runs):
        question = questions[(i + 1) % len(questions)]
        if queries is not None:
            queries.clear()  # each timed search embeds its question
        started, started_cpu = time.perf_counter(), time.process_time()
        passages_search(course=course, user=student, query=question)
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        if queries is not None:
            queries.clear()
        started, started_cpu = time.perf_counter(), time.process_time()
        assistant_context(
            course=course, user=student, messages=[{"role": "user", "content": question}]
        )
        context_timings.append((time.perf_counter() - started) * 1000)
        context_cpu.append((time.process_time() - started_cpu) * 1000)
    repeated = []
    for i in range(min(runs, 20)):  # questions asked before: their vectors are cached
        started = time.perf_counter()
        passages_search(course=course, user=student, query=questions[(i + 1) % len(questions)])
        repeated.append((time.perf_counter() - started) * 1000)
    return {
        "first_ms": first,
        "opened_ms": opened,
        "repeated_p50_ms": statistics.median(repeated),
        "p50_ms": statistics.median(timings),
        # CPU time of this process per call: what the work costs, whatever else the machine
        # runs (wall time on a machine with load 15 on 2 cores is several times longer).
        "cpu_p50_ms": statistics.median(cpu),
        "context_cpu_p50_ms": statistics.median(context_cpu),
        "p99_ms": float(np.percentile(timings, 99)),
        "context_p50_ms": statistics.median(context_timings),
        "runs": runs,
    }
