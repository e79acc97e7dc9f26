"""Prometheus exposition for this process, or for all processes in multiprocess mode.

Metric objects live next to the code that updates them (e.g. caipi/gateway/metrics.py);
this module only renders them. Set PROMETHEUS_MULTIPROC_DIR when running several web
processes so /metrics aggregates all of them.
"""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess


def exposition() -> bytes:
    """The current metrics as Prometheus text."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)
