"""Where a profiled CAIPI worker spends its time: ``python -m deploy.benchmark.where FILE``.

FILE holds py-spy's raw (collapsed) stacks, one ``frame;frame;... count`` per line, e.g.
from ``py-spy record --pid PID --rate 100 --format raw -o FILE`` (add ``--gil`` to keep
only samples holding the GIL, which is closer to CPU time: without it a thread waiting
for the GIL or in a system call counts as busy). Prints the share of samples per part of
the stack (``category``) and, inclusive, per CAIPI function (the innermost ``caipi/`` or
``deploy/`` frame). Samples taken while the process was starting up (a module being
imported) are left out, so runs of different length compare.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

_FILE = re.compile(r"\(([^:()]+)(?::\d+)?\)$")
# Innermost frame's file -> part, in order (the first match wins).
PARTS = (
    ("redis/", "redis-py"),
    ("aiohttp/", "aiohttp (upstream client)"),
    ("yarl/", "aiohttp (upstream client)"),
    ("multidict", "aiohttp (upstream client)"),
    ("uvicorn/", "uvicorn (ASGI server)"),
    ("granian", "granian (ASGI server)"),
    ("django/", "Django"),
    ("caipi/", "CAIPI code"),
    ("deploy/", "CAIPI code (deploy: router, vllm_client)"),
    ("asyncio/", "event loop (uvloop/asyncio: socket I/O, callbacks)"),
    ("uvloop", "event loop (uvloop/asyncio: socket I/O, callbacks)"),
)


def frame_file(frame: str) -> str:
    """The file of one py-spy frame (``func (path/file.py:12)``), or ""."""
    found = _FILE.search(frame)
    return found.group(1) if found else ""


def frame_name(frame: str) -> str:
    """The function of one py-spy frame."""
    return frame.split(" (", 1)[0]


def starting_up(frames: Sequence[str]) -> bool:
    """True for a sample taken while a module was being imported (the server's own
    ``__main__`` module stays on the main thread's stack for its whole life)."""
    return any(
        frame.startswith(("_find_and_load ", "_get_module_details "))
        or (frame.startswith("<module> ") and "__main__" not in frame)
        for frame in frames
    )


def category(frames: Sequence[str]) -> str:
    """Which part of the process a stack (outermost frame first) belongs to.

    Work in another thread is named by the function the thread runs (the executor's work
    item, or the thread's target); the event loop's by the innermost frame's package.
    """
    names = [frame_name(frame) for frame in frames]
    for marker, label in (("_WorkItem.run", "executor thread"), ("Thread.run", "thread")):
        if marker in names and "run_forever" not in names:
            index = names.index(marker)
            under = names[index + 1] if index + 1 < len(names) else "?"
            return f"{label}: {under}"
    for frame in reversed(frames):
        path = frame_file(frame)
        for key, label in PARTS:
            if key in path:
                return label
    return "other"


def own_function(frames: Sequence[str]) -> str | None:
    """The innermost CAIPI frame (``caipi/`` or ``deploy/``) as ``function (file)``."""
    for frame in reversed(frames):
        path = frame_file(frame)
        if path.startswith(("caipi/", "deploy/")) or "/caipi/" in path or "/deploy/" in path:
            return f"{frame_name(frame)} ({path.rsplit('caipi/', 1)[-1]})"
    return None


def parse(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    """py-spy raw lines into (frames, samples), start-up samples left out."""
    stacks = []
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if not starting_up(frames):
            stacks.append((frames, int(count)))
    return stacks


def shares(stacks: Sequence[tuple[list[str], int]]) -> tuple[int, Counter[str], Counter[str]]:
    """Total samples, samples per part and samples per own function (inclusive)."""
    parts: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        parts[category(frames)] += count
        function = own_function(frames)
        if function:
            own[function] += count
    return total, parts, own


def main(argv: list[str] | None = None) -> None:
    """Print the shares of one raw profile."""
    parser = argparse.ArgumentParser(prog="python -m deploy.benchmark.where")
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    with args.file.open() as lines:
        total, parts, own = shares(parse(lines))
    print(f"{total} samples (start-up left out)")
    for name, count in parts.most_common(args.top):
        print(f"{100 * count / max(total, 1):5.1f}%  {name}")
    print("-- inclusive, by the innermost CAIPI function")
    for name, count in own.most_common(args.top):
        print(f"{100 * count / max(total, 1):5.1f}%  {name}")


if __name__ == "__main__":
    main()
