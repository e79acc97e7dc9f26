"""The gateway's in-process view of models, endpoints, health, breakers and load.

The hot path reads only this object: no ORM query, no cache call. It is refreshed in the
background (caipi/gateway/background.py) from the database when the routing version in
the cache changes, and from the shared health snapshots every poll interval.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.conf import settings

from caipi.gateway.inflight import InFlight
from deploy.health import EndpointHealth
from deploy.router import Candidate, CircuitBreaker, CircuitState
from deploy.selectors import EndpointRoute, ModelRoute, routing_table, routing_version

logger = logging.getLogger(__name__)


@dataclass
class Catalog:
    """Everything the relay routes on, kept in memory for one process.

    Single event loop; only the background refresher replaces ``models``/``health``
    (whole-dict swaps, so a reader never sees a half-updated table).
    """

    models: dict[str, ModelRoute] = field(default_factory=dict)
    health: dict[int, EndpointHealth] = field(default_factory=dict)
    breakers: dict[int, CircuitBreaker] = field(default_factory=dict)
    inflight: InFlight = field(default_factory=InFlight)
    version: int = -1
    loaded_at: float = 0.0

    @property
    def loaded(self) -> bool:
        return self.version >= 0

    def install(self, models: dict[str, ModelRoute], version: int) -> None:
        """Replace the routing table (keeps breakers of endpoints that still exist)."""
        ids = {e.id for m in models.values() for e in m.endpoints}
        self.breakers = {i: b for i, b in self.breakers.items() if i in ids}
        self.models = models
        self.version = version
        self.loaded_at = time.monotonic()

    def reload(self) -> None:
        """Load the routing table from the database (synchronous: call from a thread)."""
        version = routing_version()
        self.install(routing_table(), version)
        logger.debug("routing table v%s: %s models", version, len(self.models))

    def endpoints(self) -> list[EndpointRoute]:
        return [e for m in self.models.values() for e in m.endpoints]

    def breaker(self, endpoint_id: int) -> CircuitBreaker:
        breaker = self.breakers.get(endpoint_id)
        if breaker is None:
            breaker = self.breakers[endpoint_id] = CircuitBreaker(
                failures=settings.GATEWAY_CIRCUIT_FAILURES,
                cooldown=settings.GATEWAY_CIRCUIT_COOLDOWN,
            )
        return breaker

    def candidates(self, model: ModelRoute) -> list[Candidate]:
        """The router's view of the model's endpoints right now."""
        result = []
        for e in model.endpoints:
            h = self.health.get(e.id)
            breaker = self.breakers.get(e.id)
            result.append(
                Candidate(
                    endpoint_id=e.id,
                    weight=e.weight,
                    state=e.state,
                    healthy=h.healthy if h is not None else True,
                    running=h.running if h is not None else 0.0,
                    waiting=h.waiting if h is not None else 0.0,
                    kv_usage=h.kv_usage if h is not None else 0.0,
                    inflight=self.inflight.total(e.id),
                    circuit=breaker.state if breaker is not None else CircuitState.CLOSED,
                )
            )
        return result

    def endpoint(self, model: ModelRoute, endpoint_id: int) -> EndpointRoute:
        return next(e for e in model.endpoints if e.id == endpoint_id)


_catalog = Catalog()


def catalog() -> Catalog:
    """This process's catalog."""
    return _catalog


def reset_catalog() -> Catalog:
    """Start from an empty catalog (tests; a forked worker)."""
    global _catalog
    _catalog = Catalog()
    return _catalog
