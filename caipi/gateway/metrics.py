"""Prometheus metrics of the gateway, rendered by the existing /metrics view.

Counters and histograms are updated once per call (never per token); label children are
cached so an update is a dict lookup plus an increment. In-flight counts and endpoint
state are read from the catalog at scrape time by a collector, costing the hot path nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1)

REQUESTS = Counter(
    "caipi_gateway_requests",
    "Calls relayed to an endpoint, by how they ended.",
    ["model", "endpoint", "outcome"],
)
REFUSALS = Counter(
    "caipi_gateway_refusals",
    "Calls refused by the gateway before reaching any endpoint, by HTTP status.",
    ["status"],
)
TOKENS = Counter("caipi_gateway_tokens", "Tokens relayed.", ["model", "endpoint", "kind"])
UPSTREAM_FAILURES = Counter(
    "caipi_gateway_upstream_failures",
    "Attempts that failed before streaming (connect error, timeout, 5xx) and were retried, "
    "or broke mid-stream and were continued elsewhere.",
    ["model", "endpoint"],
)
CONTINUED = Counter(
    "caipi_gateway_continued_streams",
    "Streams continued on another endpoint after theirs broke mid-way.",
    ["model"],
)
TTFT = Histogram(
    "caipi_gateway_time_to_first_token_seconds",
    "From the request's arrival to the endpoint's first byte.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)
OVERHEAD = Histogram(
    "caipi_gateway_overhead_seconds",
    "Time spent in CAIPI itself (parsing, auth, quota, routing), excluding the endpoint.",
    ["model"],
    buckets=_OVERHEAD_BUCKETS,
)

_children: dict[tuple[object, ...], object] = {}


def _child(metric: Counter | Histogram, *labels: object) -> Any:
    key = (metric, *labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*(str(label) for label in labels))
    return found


def call_finished(
    model: str,
    endpoint_id: int,
    outcome: str,
    prompt_tokens: int,
    completion_tokens: int,
    ttft_ms: float | None,
    overhead: float,
) -> None:
    """Account one relayed call."""
    _child(REQUESTS, model, endpoint_id, outcome).inc()
    _child(TOKENS, model, endpoint_id, "prompt").inc(prompt_tokens)
    _child(TOKENS, model, endpoint_id, "completion").inc(completion_tokens)
    if ttft_ms is not None:
        _child(TTFT, model).observe(ttft_ms / 1000)
    _child(OVERHEAD, model).observe(overhead)


def upstream_failure(model: str, endpoint_id: int) -> None:
    _child(UPSTREAM_FAILURES, model, endpoint_id).inc()


def stream_continued(model: str) -> None:
    _child(CONTINUED, model).inc()


def refused(status: int) -> None:
    _child(REFUSALS, status).inc()


class _CatalogCollector(Collector):
    """In-flight calls and endpoint state, read from this process's catalog when scraped."""

    def collect(self) -> Iterator[Metric]:
        from caipi.gateway.catalog import catalog

        current = catalog()
        inflight = GaugeMetricFamily(
            "caipi_gateway_inflight",
            "Calls this gateway process has open on the endpoint.",
            labels=["model", "endpoint"],
        )
        seen = GaugeMetricFamily(
            "caipi_gateway_inflight_seen",
            "Calls open on the endpoint as this process's router sees them: its own and the "
            "other processes' last published counts (a dead process's leave within 3-4 s).",
            labels=["model", "endpoint"],
        )
        up = GaugeMetricFamily(
            "caipi_gateway_endpoint_up",
            "1 when the endpoint is ready, healthy and its circuit is not open.",
            labels=["model", "endpoint", "state"],
        )
        for model in current.models.values():
            for candidate in current.candidates(model):
                labels = [model.name, str(candidate.endpoint_id)]
                inflight.add_metric(labels, current.inflight.local.get(candidate.endpoint_id, 0))
                seen.add_metric(labels, current.inflight.total(candidate.endpoint_id))
                usable = candidate.state == "ready" and candidate.healthy
                usable = usable and candidate.circuit != "open"
                up.add_metric([*labels, candidate.state], 1.0 if usable else 0.0)
        yield inflight
        yield seen
        yield up

    def describe(self) -> Iterator[Metric]:
        return iter(())


_collector = _CatalogCollector()
try:
    REGISTRY.register(_collector)
except ValueError:  # registered already (module reloaded)
    logger.debug("gateway catalog collector already registered")
