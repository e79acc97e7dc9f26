"""The quality bars of ARCHITECTURE.md / issue #3, checked against pooled results.

Every CAIPI target (one per ASGI server) is judged on its own. "Added" latency is the
difference between the target's percentile and direct access's in the same step.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

from deploy.benchmark.stats import Summary

DIRECT = "direct"
LITELLM = "litellm"
# "Per-token latency unchanged within noise": inter-chunk p50 within 1 ms or 5 %.
ITL_TOLERANCE_MS = 1.0
ITL_TOLERANCE_RATIO = 0.05


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar, the target it applies to, what was measured and whether it is met."""

    name: str
    target: str
    measured: str
    met: bool

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON."""
        return asdict(self)


class Lookup(Protocol):
    """Finds the pooled summary of (scenario, level, target)."""

    def __call__(self, scenario: str, level: int, target: str) -> Summary | None: ...


def _pair(
    find: Lookup, scenario: str, level: int, target: str, base: str
) -> tuple[Summary, Summary] | None:
    mine, theirs = find(scenario, level, target), find(scenario, level, base)
    return (mine, theirs) if mine and theirs else None


def single_bar(find: Lookup, target: str) -> Bar | None:
    """Added TTFT p50 <= 2 ms with one request at a time."""
    pair = _pair(find, "single", 1, target, DIRECT)
    if not pair:
        return None
    added = pair[0].ttft_p50 - pair[1].ttft_p50
    ok = added <= 2.0 and pair[0].errors == 0
    return Bar("added TTFT p50, one request at a time (<= 2 ms)", target, f"{added:+.2f} ms", ok)


def streams_bar(find: Lookup, target: str, level: int) -> Bar | None:
    """At ``level`` streams: added p50 <= 10 ms, p99 <= 50 ms, no errors, ITL unchanged."""
    pair = _pair(find, "concurrency", level, target, DIRECT)
    if not pair:
        return None
    mine, base = pair
    p50, p99 = mine.ttft_p50 - base.ttft_p50, mine.ttft_p99 - base.ttft_p99
    itl = mine.itl_p50 - base.itl_p50
    itl_ok = abs(itl) <= max(ITL_TOLERANCE_MS, ITL_TOLERANCE_RATIO * base.itl_p50)
    ok = p50 <= 10 and p99 <= 50 and mine.errors == 0 and itl_ok
    measured = (
        f"added p50 {p50:+.1f} ms, p99 {p99:+.1f} ms, errors {mine.errors}, ITL p50 {itl:+.2f} ms"
    )
    return Bar(f"{level} streams: added TTFT p50 <= 10 ms, p99 <= 50 ms, 0 errors, ITL same",
               target, measured, ok)  # fmt: skip


def throughput_bar(find: Lookup, target: str, level: int) -> Bar | None:
    """Non-streaming requests/s at least twice LiteLLM's."""
    pair = _pair(find, "throughput", level, target, LITELLM)
    if not pair:
        return None
    mine, theirs = pair
    ratio = mine.throughput_rps / theirs.throughput_rps if theirs.throughput_rps else math.inf
    measured = f"{mine.throughput_rps:.0f} vs {theirs.throughput_rps:.0f} req/s = {ratio:.2f}x"
    return Bar("non-streaming throughput >= 2x LiteLLM", target, measured, ratio >= 2.0)


def uneven_bar(find: Lookup, target: str, level: int) -> Bar | None:
    """With one slow endpoint of three, TTFT p99 at least 30 % below round-robin's."""
    pair = _pair(find, "uneven", level, target, DIRECT)
    if not pair:
        return None
    mine, rr = pair
    gain = 1 - mine.ttft_p99 / rr.ttft_p99 if rr.ttft_p99 else math.nan
    measured = f"p99 {mine.ttft_p99:.0f} vs {rr.ttft_p99:.0f} ms = {gain:.0%} lower"
    return Bar("uneven endpoints: TTFT p99 >= 30% below round-robin", target, measured,
               gain >= 0.30)  # fmt: skip


def evaluate(find: Lookup, caipi_targets: Sequence[str], levels: dict[str, int]) -> list[Bar]:
    """All bars for every CAIPI target; ``levels`` gives each scenario's concurrency."""
    checks: list[Callable[[str], Bar | None]] = [
        lambda t: single_bar(find, t),
        lambda t: streams_bar(find, t, levels.get("streams", 1000)),
        lambda t: throughput_bar(find, t, levels.get("throughput", 100)),
        lambda t: uneven_bar(find, t, levels.get("uneven", 48)),
    ]
    bars = [check(target) for target in caipi_targets for check in checks]
    return [bar for bar in bars if bar is not None]
