"""Lecture-note retrieval benchmark: quality on an English and German question set, speed.

    python -m rag.benchmark                 # quality (all modes) + speed, provisional
    python -m rag.benchmark --quality       # only hit@k / MRR, threshold calibration
    python -m rag.benchmark --speed --quick # ingestion and search latency (10k chunks only)

See docs/benchmarks.md (RAG section) for results and how to read them.
"""
