"""Pure statistics over request samples: percentiles and one summary per run."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class Sample:
    """Timings of one request, in seconds since it was sent.

    ``ttft`` is the arrival of the first content chunk (streams) or of the whole
    response (non-streaming); ``gaps`` are the times between consecutive content
    chunks; ``error`` is a short reason, empty on success.
    """

    ttft: float
    e2e: float
    chunks: int = 0
    gaps: list[float] = field(default_factory=list)
    error: str = ""


def percentile(values: Sequence[float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) with linear interpolation.

    Same definition as numpy's default ("linear"). Returns NaN for no values.
    """
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(slots=True)
class Summary:
    """Aggregates of one run of one target, times in milliseconds.

    ``cpu_per_1k`` is CPU seconds of the system under test per 1000 requests
    (NaN for direct access, which has none); ``sim_cpu_per_1k`` the simulators'.
    ``engine_died`` is set by the engine-kill scenario only: whether the engine meant to
    die mid-stream really did (a run in which it did not shows nothing).
    """

    requests: int
    errors: int
    duration_s: float
    throughput_rps: float
    ttft_p50: float
    ttft_p99: float
    itl_p50: float
    itl_p99: float
    e2e_p50: float
    e2e_p99: float
    cpu_per_1k: float = math.nan
    sim_cpu_per_1k: float = math.nan
    error_kinds: dict[str, int] = field(default_factory=dict)
    engine_died: bool | None = None

    def as_dict(self) -> dict[str, object]:
        """Plain dict for JSON (NaN becomes None)."""
        return {key: _json_number(value) for key, value in asdict(self).items()}


def _json_number(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _ms(values: Sequence[float], q: float) -> float:
    return percentile(values, q) * 1000


def count_errors(samples: Iterable[Sample]) -> dict[str, int]:
    """Count failed samples by reason."""
    kinds: dict[str, int] = {}
    for sample in samples:
        if sample.error:
            kinds[sample.error] = kinds.get(sample.error, 0) + 1
    return kinds


def summarize(samples: Sequence[Sample], duration_s: float) -> Summary:
    """Summarize a run: latency percentiles over successful requests only.

    Throughput counts successful requests per second of wall time.
    """
    ok = [s for s in samples if not s.error]
    gaps = [gap for s in ok for gap in s.gaps]
    kinds = count_errors(samples)
    return Summary(
        requests=len(samples),
        errors=sum(kinds.values()),
        duration_s=duration_s,
        throughput_rps=len(ok) / duration_s if duration_s > 0 else math.nan,
        ttft_p50=_ms([s.ttft for s in ok], 50),
        ttft_p99=_ms([s.ttft for s in ok], 99),
        itl_p50=_ms(gaps, 50),
        itl_p99=_ms(gaps, 99),
        e2e_p50=_ms([s.e2e for s in ok], 50),
        e2e_p99=_ms([s.e2e for s in ok], 99),
        error_kinds=kinds,
    )


def with_cpu(summary: Summary, sut_cpu_s: float | None, sim_cpu_s: float) -> Summary:
    """Attach CPU seconds per 1000 requests (system under test and simulators)."""
    per_k = 1000 / summary.requests if summary.requests else math.nan
    summary.cpu_per_1k = math.nan if sut_cpu_s is None else sut_cpu_s * per_k
    summary.sim_cpu_per_1k = sim_cpu_s * per_k
    return summary


def merge(summaries: Sequence[Summary]) -> dict[str, float]:
    """Median of each numeric field over repeated runs (robust to one noisy run)."""
    if not summaries:
        return {}
    fields = [name for name, value in asdict(summaries[0]).items() if isinstance(value, float)]
    return {
        name: percentile([getattr(s, name) for s in summaries], 50)
        for name in fields
        if not any(math.isnan(getattr(s, name)) for s in summaries)
    }
