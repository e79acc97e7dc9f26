"""The quality bars of issue 14 (issue 3's where issue 14 sets none), judged per repeat.

Every bar is checked in each repeat on its own, against the runs of that repeat only, and
is met only when it is met in every repeat. "Added" latency is the difference between the
target's percentile and direct access's in the same step and repeat. One-worker targets
(``caipi-<server>``, ``caipi-<server>-baseline``) and two-worker targets
(``caipi-<server>-2w``) are judged by different bars; the two-worker throughput bar
compares ``caipi-<server>-2w`` with ``caipi-<server>`` of the same repeat.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from deploy.benchmark.stats import Summary

DIRECT = "direct"
LITELLM = "litellm"
TWO_WORKERS = "-2w"

SINGLE_ADDED_P50_MS = 1.5
STREAMS_ADDED_P50_MS = 5.0
STREAMS_ADDED_P99_MS = 25.0
ITL_P99_RATIO = 1.10
TWO_WORKER_SPEEDUP = 1.6
TWO_WORKER_ADDED_P99_MS = 50.0
THROUGHPUT_VS_LITELLM = 2.0
UNEVEN_GAIN = 0.30
ENGINE_KILL = "engine-kill"


@dataclass(frozen=True, slots=True)
class Check:
    """One bar in one repeat: what was measured and whether it met the bar."""

    measured: str
    met: bool


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar for one target, checked in every repeat that ran its steps."""

    name: str
    target: str
    checks: tuple[Check, ...]

    @property
    def met(self) -> bool:
        """Met only when checked at least once and met in every repeat."""
        return bool(self.checks) and all(check.met for check in self.checks)

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return {
            "name": self.name,
            "target": self.target,
            "met": self.met,
            "repeats": [{"measured": c.measured, "met": c.met} for c in self.checks],
        }


class Lookup(Protocol):
    """Finds the summary of (scenario, level, target) in one repeat."""

    def __call__(self, scenario: str, level: int, target: str) -> Summary | None: ...


def is_two_worker(target: str) -> bool:
    """True for the two-worker CAIPI targets (``caipi-<server>-2w``)."""
    return target.endswith(TWO_WORKERS)


def _pair(
    find: Lookup, scenario: str, level: int, target: str, base: str
) -> tuple[Summary, Summary] | None:
    mine, theirs = find(scenario, level, target), find(scenario, level, base)
    return (mine, theirs) if mine and theirs else None


def single_check(find: Lookup, target: str) -> Check | None:
    """Added TTFT p50 with one request at a time, and no errors."""
    pair = _pair(find, "single", 1, target, DIRECT)
    if not pair:
        return None
    added = pair[0].ttft_p50 - pair[1].ttft_p50
    ok = added <= SINGLE_ADDED_P50_MS and pair[0].errors == 0
    return Check(f"{added:+.2f} ms", ok)


def streams_check(find: Lookup, target: str, level: int) -> Check | None:
    """One worker at ``level`` streams: added p50 and p99, no errors, ITL p99 near direct's."""
    pair = _pair(find, "concurrency", level, target, DIRECT)
    if not pair:
        return None
    mine, base = pair
    p50, p99 = mine.ttft_p50 - base.ttft_p50, mine.ttft_p99 - base.ttft_p99
    itl_ratio = mine.itl_p99 / base.itl_p99 if base.itl_p99 else math.nan
    ok = (
        p50 <= STREAMS_ADDED_P50_MS
        and p99 <= STREAMS_ADDED_P99_MS
        and mine.errors == 0
        and itl_ratio <= ITL_P99_RATIO
    )
    measured = (f"p50 {p50:+.1f}, p99 {p99:+.1f} ms, err {mine.errors}, "
                f"ITL p99 {mine.itl_p99:.0f}/{base.itl_p99:.0f} ms")  # fmt: skip
    return Check(measured, ok)


def two_worker_throughput_check(find: Lookup, target: str, level: int) -> Check | None:
    """Non-streaming requests/s of two workers over one worker's (same server, same repeat)."""
    pair = _pair(find, "throughput", level, target, target.removesuffix(TWO_WORKERS))
    if not pair:
        return None
    two, one = pair
    ratio = two.throughput_rps / one.throughput_rps if one.throughput_rps else math.nan
    measured = f"{two.throughput_rps:.0f}/{one.throughput_rps:.0f} req/s = {ratio:.2f}x"
    return Check(measured, ratio >= TWO_WORKER_SPEEDUP and two.errors == 0)


def two_worker_streams_check(find: Lookup, target: str, level: int) -> Check | None:
    """Two workers at ``level`` streams: no errors and added TTFT p99 within the bar."""
    pair = _pair(find, "concurrency", level, target, DIRECT)
    if not pair:
        return None
    mine, base = pair
    p99 = mine.ttft_p99 - base.ttft_p99
    return Check(f"p99 {p99:+.1f} ms, err {mine.errors}",
                 p99 <= TWO_WORKER_ADDED_P99_MS and mine.errors == 0)  # fmt: skip


def throughput_vs_litellm_check(find: Lookup, target: str, level: int) -> Check | None:
    """Non-streaming requests/s over LiteLLM's (issue 3)."""
    pair = _pair(find, "throughput", level, target, LITELLM)
    if not pair:
        return None
    mine, theirs = pair
    ratio = mine.throughput_rps / theirs.throughput_rps if theirs.throughput_rps else math.inf
    measured = f"{mine.throughput_rps:.0f}/{theirs.throughput_rps:.0f} req/s = {ratio:.1f}x"
    return Check(measured, ratio >= THROUGHPUT_VS_LITELLM)


def uneven_check(find: Lookup, target: str, level: int) -> Check | None:
    """With one slow endpoint of three, TTFT p99 below round-robin's by the bar (issue 3)."""
    pair = _pair(find, "uneven", level, target, DIRECT)
    if not pair:
        return None
    mine, rr = pair
    gain = 1 - mine.ttft_p99 / rr.ttft_p99 if rr.ttft_p99 else math.nan
    return Check(f"p99 {mine.ttft_p99:.0f}/{rr.ttft_p99:.0f} ms = {gain:.0%} lower",
                 gain >= UNEVEN_GAIN)  # fmt: skip


def engine_kill_check(find: Lookup, target: str, level: int) -> Check | None:
    """One of three engines killed under load: no failed call, streamed or not."""
    mine = find(ENGINE_KILL, level, target)
    if mine is None:
        return None
    streamed = sum(n for kind, n in mine.error_kinds.items() if kind.startswith("streamed"))
    whole = mine.errors - streamed
    died = "" if mine.engine_died else ", engine did NOT die"
    half = mine.requests // 2
    measured = f"failed {streamed}/{mine.requests - half} streamed, {whole}/{half} whole{died}"
    return Check(measured, mine.errors == 0 and bool(mine.engine_died))


Checker = Callable[[Lookup, str], Check | None]


def checkers(target: str, levels: dict[str, int]) -> list[tuple[str, Checker]]:
    """The bars that apply to ``target``, each with its name; ``levels`` gives each
    scenario's concurrency ("streams", "streams_2w", "throughput", "uneven", "kill")."""
    streams, streams_2w = levels.get("streams", 1000), levels.get("streams_2w", 2000)
    throughput, uneven = levels.get("throughput", 100), levels.get("uneven", 48)
    kill = levels.get("kill", 400)
    kill_name = (f"engine killed under load ({kill // 2} streamed + {kill // 2} whole calls, "
                 "1 of 3 engines): 0 failed calls")  # fmt: skip
    kill_bar: tuple[str, Checker] = (kill_name, lambda f, t: engine_kill_check(f, t, kill))
    if is_two_worker(target):
        return [
            (f"two workers: non-streaming throughput >= {TWO_WORKER_SPEEDUP}x one worker's",
             lambda f, t: two_worker_throughput_check(f, t, throughput)),
            (f"two workers, {streams_2w} streams: 0 errors, added TTFT p99 <= "
             f"{TWO_WORKER_ADDED_P99_MS:.0f} ms",
             lambda f, t: two_worker_streams_check(f, t, streams_2w)),
            kill_bar,
        ]  # fmt: skip
    return [
        (f"added TTFT p50, one request at a time <= {SINGLE_ADDED_P50_MS} ms",
         single_check),
        (f"{streams} streams, one worker: added TTFT p50 <= {STREAMS_ADDED_P50_MS:.0f} ms, "
         f"p99 <= {STREAMS_ADDED_P99_MS:.0f} ms, 0 errors, ITL p99 <= "
         f"{ITL_P99_RATIO:.2f}x direct's", lambda f, t: streams_check(f, t, streams)),
        (f"non-streaming throughput >= {THROUGHPUT_VS_LITELLM:.0f}x LiteLLM (issue 3)",
         lambda f, t: throughput_vs_litellm_check(f, t, throughput)),
        (f"uneven endpoints: TTFT p99 >= {UNEVEN_GAIN:.0%} below round-robin (issue 3)",
         lambda f, t: uneven_check(f, t, uneven)),
        kill_bar,
    ]  # fmt: skip


def evaluate(
    repeats: Sequence[Lookup], caipi_targets: Sequence[str], levels: dict[str, int]
) -> list[Bar]:
    """Every bar of every CAIPI target, checked in each repeat (one lookup per repeat).

    A bar none of whose steps ran is left out; a repeat that did not run its steps is
    not counted for it.
    """
    bars = []
    for target in caipi_targets:
        for name, check in checkers(target, levels):
            results = tuple(c for c in (check(find, target) for find in repeats) if c)
            if results:
                bars.append(Bar(name, target, results))
    return bars
