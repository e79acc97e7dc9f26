"""The quality part of the benchmark and its tables (Markdown, for the docs); the speed part
is ``rag/benchmark/speed.py``."""

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

from django.conf import settings

from rag.benchmark import quality as q


def _print(text: str = "") -> None:
    print(text, flush=True)


def conditions() -> str:
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
        f"{len(questions['unanswerable'])} unanswerable. {conditions()}\n"
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
