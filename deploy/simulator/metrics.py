"""Prometheus exposition with vLLM's metric names, labels and buckets.

Labels follow vLLM's V1 engine: every series carries ``model_name`` (the first served
model name) and ``engine`` ("0", one engine core); ``vllm:request_success`` adds
``finished_reason``. Scheduler gauges are read from the engine at scrape time, so they
cost nothing on the token path. With ``legacy_metrics`` the KV-cache gauge is exported
under its pre-0.9 name ``vllm:gpu_cache_usage_perc`` instead of ``vllm:kv_cache_usage_perc``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import NamedTuple

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FINISH_REASONS = ("stop", "length", "abort")

# Bucket edges copied from vLLM's PrometheusStatLogger so dashboards and the router's
# percentile maths see the same resolution as against a real engine.
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
TPOT_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


class SchedulerState(NamedTuple):
    """What the engine reports at scrape time."""

    running: int
    waiting: int
    kv_cache_usage: float


class _SchedulerCollector(Collector):
    def __init__(self, labels: list[str], read: Callable[[], SchedulerState], legacy: bool) -> None:
        self._labels = labels
        self._read = read
        self._kv_name = "vllm:gpu_cache_usage_perc" if legacy else "vllm:kv_cache_usage_perc"

    def collect(self) -> Iterator[Metric]:
        state = self._read()
        for name, documentation, value in (
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                state.running,
            ),
            (
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                state.waiting,
            ),
            (self._kv_name, "KV-cache usage. 1 means 100 percent usage.", state.kv_cache_usage),
        ):
            family = GaugeMetricFamily(name, documentation, labels=["model_name", "engine"])
            family.add_metric(self._labels, float(value))
            yield family


_LABELS = ["model_name", "engine"]
_COUNTERS = {
    "prompt_tokens": ("vllm:prompt_tokens", "Number of prefill tokens processed."),
    "generation_tokens": ("vllm:generation_tokens", "Number of generation tokens processed."),
}
_HISTOGRAMS = {
    "ttft": (
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        TTFT_BUCKETS,
    ),
    "tpot": (
        "vllm:time_per_output_token_seconds",
        "Histogram of time per output token in seconds.",
        TPOT_BUCKETS,
    ),
    "e2e": (
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        LATENCY_BUCKETS,
    ),
    "queue": (
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        LATENCY_BUCKETS,
    ),
}


class SimulatorMetrics:
    """Owns a private registry (never the global one, so tests can build many)."""

    def __init__(
        self, model_name: str, read_state: Callable[[], SchedulerState], *, legacy: bool
    ) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        values = [model_name, "0"]
        registry.register(_SchedulerCollector(values, read_state, legacy))
        counters = {
            key: Counter(name, doc, _LABELS, registry=registry).labels(*values)
            for key, (name, doc) in _COUNTERS.items()
        }
        self._prompt_tokens = counters["prompt_tokens"]
        self._generation_tokens = counters["generation_tokens"]
        success = Counter(
            "vllm:request_success",
            "Count of successfully processed requests.",
            [*_LABELS, "finished_reason"],
            registry=registry,
        )
        self._success = {reason: success.labels(*values, reason) for reason in FINISH_REASONS}
        histograms = {
            key: Histogram(name, doc, _LABELS, registry=registry, buckets=buckets).labels(*values)
            for key, (name, doc, buckets) in _HISTOGRAMS.items()
        }
        self._ttft = histograms["ttft"]
        self._tpot = histograms["tpot"]
        self._e2e = histograms["e2e"]
        self._queue = histograms["queue"]

    def record_first_token(self, ttft: float) -> None:
        """Observe one request's time from arrival to its first token."""
        self._ttft.observe(ttft)

    def record_finished(
        self,
        *,
        reason: str,
        prompt_tokens: int,
        generation_tokens: int,
        e2e: float,
        queued: float,
        tpot: float | None,
    ) -> None:
        """Account one request that left the engine (``reason`` in ``FINISH_REASONS``)."""
        self._prompt_tokens.inc(prompt_tokens)
        self._generation_tokens.inc(generation_tokens)
        self._success[reason].inc()
        self._e2e.observe(e2e)
        self._queue.observe(queued)
        if tpot is not None:
            self._tpot.observe(tpot)

    def record_prompt_only(self, prompt_tokens: int) -> None:
        """Account an embedding request: prompt tokens only, finished at once."""
        self._prompt_tokens.inc(prompt_tokens)
        self._success["stop"].inc()

    def render(self) -> bytes:
        """Return the Prometheus text exposition of every series."""
        return generate_latest(self.registry)
