"""Speed: ingestion pages/s, and a student's search and the assistant's context at 10k and
100k passages, in wall time and in CPU time of this process.

The search courses are synthetic (see ``search_course``) and take minutes to build at 100k;
with ``--data-dir`` they are kept in that folder and reused by the next run (as are the
corpus's base vectors), so a re-measurement only measures.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import pstats
import random
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

from rag.benchmark import quality as q

BUILD_BATCH = 5000
DOCUMENTS = 100  # per search course; every tenth is hidden from students


def _print(text: str = "") -> None:
    print(text, flush=True)


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


def _percentile(values: list[float], p: float) -> float:
    return float(np.percentile(values, p)) if values else 0.0


def speed(args: argparse.Namespace, conditions: str) -> dict[str, Any]:
    corpus = q.load_corpus(budget=settings.RAG_CHUNK_TOKENS, overlap=settings.RAG_CHUNK_OVERLAP)
    _print(f"## Speed\n\n{conditions}\n")
    results: dict[str, Any] = {"conditions": conditions}
    if not args.no_ingestion:
        results["ingestion"] = ingestion(args, corpus)
    sizes = [10_000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    runs = args.runs or (30 if args.quick else 60)
    results["search"] = {}
    for size in sizes:
        results["search"][size] = search_latency(size, corpus, runs=runs, profile=args.profile)
    _search_table(results["search"])
    return results


def _search_table(search: dict[int, dict[str, Any]]) -> None:
    _print(
        "| chunks | runs | search p50 wall | search p99 wall | search p50 CPU | search p99 CPU "
        "| assistant context p50 wall | p99 wall | p50 CPU | p99 CPU | repeated question p50 "
        "wall | first search of the process | built |"
    )
    _print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for size, r in search.items():
        _print(
            f"| {size:,} | {r['runs']} | {r['p50_ms']:.1f} ms | {r['p99_ms']:.1f} ms | "
            f"{r['cpu_p50_ms']:.1f} ms | {r['cpu_p99_ms']:.1f} ms | "
            f"{r['context_p50_ms']:.1f} ms | {r['context_p99_ms']:.1f} ms | "
            f"{r['context_cpu_p50_ms']:.1f} ms | {r['context_cpu_p99_ms']:.1f} ms | "
            f"{r['repeated_p50_ms']:.1f} ms | {r['first_ms']:.0f} ms "
            f"({'builds' if r['lexical_built'] else 'opens'} the BM25 index) | "
            f"{'now, ' + format(r['build_seconds'], '.0f') + ' s' if r['built'] else 'kept'} |"
        )
    _print()


# --- ingestion ----------------------------------------------------------------------------


def ingestion(args: argparse.Namespace, corpus: q.Corpus) -> dict[str, Any]:
    pages = 40 if args.quick else args.pages
    data = _pdf(pages, [t for t in corpus.texts if len(t) > 200])
    from rag import parsing

    started = time.perf_counter()
    parsing.parse("bench.pdf", data)
    parse_seconds = time.perf_counter() - started
    results: dict[str, Any] = {"pages": pages, "parse_pages_per_second": pages / parse_seconds}
    _print(f"Parsing a {pages}-page text PDF: {pages / parse_seconds:.0f} pages/s.\n")
    variants: list[tuple[str, str | None]] = []
    if not args.no_bundled_ingestion:
        variants.append(("bundled", None))
    if args.embedding_url:
        variants.append(("api", args.embedding_url))
    for label, url in variants:
        results[label] = _ingest_once(label=label, data=data, url=url, args=args, pages=pages)
    return results


def _ingest_once(
    *, label: str, data: bytes, url: str | None, args: argparse.Namespace, pages: int
) -> dict[str, Any]:
    """End-to-end ingestion of the PDF (parse, chunk, embed, store) with one embedder; the
    course is deleted afterwards (a kept data folder does not fill up)."""
    from caipi.core.models import Course
    from rag import embeddings, services, vectorstore

    name = f"ING-{label}-{time.time_ns()}"
    course = Course.objects.create(title=name, label=name[:100])
    previous = (
        settings.RAG_EMBEDDING_URL,
        settings.RAG_EMBEDDING_MODEL,
        settings.RAG_EMBEDDING_API_KEY,
    )
    settings.RAG_EMBEDDING_URL = url
    settings.RAG_EMBEDDING_MODEL = args.embedding_model if url else None
    settings.RAG_EMBEDDING_API_KEY = "benchmark" if url else None
    try:
        embedder = embeddings.embedder()
        embedder.embed_query("warm up")  # model load is not ingestion
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
        started, started_cpu = time.perf_counter(), time.process_time()
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
        cpu_seconds = time.process_time() - started_cpu
    finally:
        settings.RAG_EMBEDDING_URL, settings.RAG_EMBEDDING_MODEL, settings.RAG_EMBEDDING_API_KEY = (
            previous
        )
    model = outcome.document.embedding_model
    passages = outcome.document.chunk_count
    course.delete()
    services.course_forget(course_id=course.pk)
    rest = max(seconds - embed_seconds, 1e-9)
    _print(
        f"Ingestion with {model} ({passages} passages): {pages / seconds:.1f} pages/s end to "
        f"end (wall), {pages / cpu_seconds:.1f} pages per CPU second of this process; "
        f"embedding {passages / embed_seconds:.1f} passages/s ({embed_seconds:.1f} s); "
        f"everything else (parse, chunk, database, Chroma) {pages / rest:.1f} pages/s.\n"
    )
    return {
        "model": model,
        "passages": passages,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "embed_seconds": embed_seconds,
        "pages_per_second": pages / seconds,
        "pages_per_cpu_second": pages / cpu_seconds,
        "passages_per_second_embedding": passages / embed_seconds,
        "pages_per_second_without_embedding": pages / rest,
    }


# --- search -------------------------------------------------------------------------------


def _base_vectors(corpus: q.Corpus) -> np.ndarray:
    """The corpus's passages embedded by the configured model, kept in the data folder."""
    from rag.embeddings import embedder

    model = embedder()
    digest = hashlib.sha256(("\n\0".join([model.name, *corpus.indexed])).encode()).hexdigest()
    path = Path(settings.DATA_DIR) / "bench" / f"base-{digest[:16]}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(model.embed_passages(corpus.indexed), dtype=np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def search_course(size: int, corpus: q.Corpus) -> tuple[Any, Any, bool]:
    """The benchmark course of ``size`` passages and its student: kept from an earlier run
    when complete, else built (``built`` True).

    Passage vectors are the corpus's real vectors with noise (embedding 100k real passages
    would take hours here); texts are shuffled sentences of the corpus, so BM25 sees a
    realistic vocabulary. 100 documents, every tenth hidden from students.
    """
    from caipi.core.models import Course, CourseRole, Membership, User
    from rag import lexical, services, vectorstore
    from rag.embeddings import embedder
    from rag.models import Chunk, CourseIndex, Document

    model = embedder()
    label = f"B{size}"
    course = Course.objects.filter(label=label).first()
    if course is not None:
        index = CourseIndex.objects.filter(course=course).first()
        complete = (
            index is not None
            and index.embedding_model == model.name
            and Chunk.objects.filter(course_id=course.pk).count() == size
            and vectorstore.chunks_count(course_id=course.pk) == size
        )
        if complete:
            return course, User.objects.get(username=f"bench-{size}"), False
        course.delete()
        services.course_forget(course_id=course.pk)
        User.objects.filter(username=f"bench-{size}").delete()
    base = _base_vectors(corpus)
    rng = np.random.default_rng(size)
    sentences = [s for t in corpus.texts for s in t.split(". ") if len(s) > 20]
    course = Course.objects.create(title=f"Bench {size}", label=label)
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
            chunk_count=size // DOCUMENTS,
            embedding_model=model.name,
            visible=i % 10 != 0,
        )
        for i in range(DOCUMENTS)
    )
    CourseIndex.objects.create(course=course, embedding_model=model.name, version=1)
    for start in range(0, size, BUILD_BATCH):
        rows = [
            Chunk(
                document=documents[i % DOCUMENTS],
                course_id=course.pk,
                ordinal=i // DOCUMENTS,
                text=". ".join(rng.choice(sentences, 4)),
                heading="Section",
                tokens=80,
            )
            for i in range(start, min(size, start + BUILD_BATCH))
        ]
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
    lexical.forget_all()
    return course, student, True


def search_latency(size: int, corpus: q.Corpus, *, runs: int, profile: bool) -> dict[str, Any]:
    """Search as a student, question embedding included: every timed search and assistant
    context embeds its question for real (the question cache is emptied before each)."""
    from rag import lexical
    from rag.assistant import assistant_context
    from rag.embeddings import embedder
    from rag.retrieval import lexical_index, passages_search

    started = time.perf_counter()
    course, student, built = search_course(size, corpus)
    build_seconds = time.perf_counter() - started
    questions = [item["q"] for item in q.load_questions()["questions"]]
    model = embedder()
    model.embed_query("warm up")  # the model's load is not a search
    lexical_built = lexical.load(course.pk, 1, _fingerprint(course.pk)) is None
    started = time.perf_counter()
    passages_search(course=course, user=student, query=questions[0])
    first = (time.perf_counter() - started) * 1000
    lexical.forget_all()  # as a fresh process: the saved index is opened
    started = time.perf_counter()
    passages_search(course=course, user=student, query=questions[1])
    opened = (time.perf_counter() - started) * 1000
    lexical_index(course.pk, 1)
    queries = getattr(model, "queries", None)

    def fresh() -> None:
        if queries is not None:
            queries.clear()  # each timed call embeds its question

    wall, cpu, context_wall, context_cpu = [], [], [], []
    for i in range(runs):
        question = questions[(i + 1) % len(questions)]
        fresh()
        began, began_cpu = time.perf_counter(), time.process_time()
        passages_search(course=course, user=student, query=question)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
        fresh()
        began, began_cpu = time.perf_counter(), time.process_time()
        assistant_context(
            course=course, user=student, messages=[{"role": "user", "content": question}]
        )
        context_wall.append((time.perf_counter() - began) * 1000)
        context_cpu.append((time.process_time() - began_cpu) * 1000)
    repeated = []
    for i in range(min(runs, 20)):  # questions asked before: their vectors are cached
        began = time.perf_counter()
        passages_search(course=course, user=student, query=questions[(i + 1) % len(questions)])
        repeated.append((time.perf_counter() - began) * 1000)
    result: dict[str, Any] = {
        "runs": runs,
        "built": built,
        "build_seconds": build_seconds,
        "lexical_built": lexical_built,
        "first_ms": first,
        "opened_ms": opened,
        "p50_ms": statistics.median(wall),
        "p99_ms": _percentile(wall, 99),
        # CPU time of this process (all its threads) per call: what the work costs,
        # whatever else the machine runs.
        "cpu_p50_ms": statistics.median(cpu),
        "cpu_p99_ms": _percentile(cpu, 99),
        "context_p50_ms": statistics.median(context_wall),
        "context_p99_ms": _percentile(context_wall, 99),
        "context_cpu_p50_ms": statistics.median(context_cpu),
        "context_cpu_p99_ms": _percentile(context_cpu, 99),
        "repeated_p50_ms": statistics.median(repeated),
    }
    if profile:
        result["profile"] = _profile(course, student, questions, runs, fresh)
        _print(f"### Profile of {runs} searches at {size:,} passages (CPU time)\n")
        _print(f"```\n{result['profile']}```\n")
    return result


def _fingerprint(course_id: int) -> dict[str, int]:
    from django.db.models import Count, Max

    from rag.models import Chunk

    stats = Chunk.objects.filter(course_id=course_id).aggregate(n=Count("pk"), top=Max("pk"))
    return {"chunks": stats["n"] or 0, "max_chunk_id": stats["top"] or 0}


def _profile(course: Any, student: Any, questions: list[str], runs: int, fresh: Any) -> str:
    """cProfile of ``runs`` searches timed by the calling thread's CPU clock (the question
    is embedded in another thread, whose CPU would otherwise be charged to whatever the
    calling thread does meanwhile): the 25 costliest functions by their own time, and by
    time including what they call; and how the process's CPU splits between the threads."""
    from rag.retrieval import passages_search

    profiler = cProfile.Profile(time.thread_time)
    thread_cpu = process_cpu = 0.0
    for i in range(runs):
        fresh()
        began_thread, began_process = time.thread_time(), time.process_time()
        profiler.enable()
        passages_search(course=course, user=student, query=questions[(i + 1) % len(questions)])
        profiler.disable()
        thread_cpu += time.thread_time() - began_thread
        process_cpu += time.process_time() - began_process
    out = io.StringIO()
    out.write(
        f"CPU per search: {process_cpu / runs * 1000:.1f} ms in all, of which the calling "
        f"thread {thread_cpu / runs * 1000:.1f} ms (profiled below, with the profiler's own "
        f"overhead) and the other threads (question embedding) "
        f"{(process_cpu - thread_cpu) / runs * 1000:.1f} ms.\n"
    )
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return out.getvalue()
