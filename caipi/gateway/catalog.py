"""The gateway's in-process view of models, endpoints, health, breakers and load.

The hot path reads only this object: no ORM query, no cache call. It is refreshed in the
background (caipi/gateway/background.py) from the database when the routing version in
the cache changes (checked every CAIPI_SHARED_STATE_POLL_SECONDS), from the shared health
snapshots every poll interval, and from Redis every tick for the other processes' in-flight
counts (caipi/gateway/inflight.py) and breaker openings (caipi/gateway/breakers.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

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
    # Endpoints this process saw turn ready (unix time): older shared health snapshots of
    # them (taken while they were still starting) are ignored, not routed around.
    turned_ready: dict[int, float] = field(default_factory=dict)
    # Breakers that opened here since the last sync (to publish), and endpoints whose
    # breaker another process opened (skipped here until that opening's cooldown ends).
    opened: set[int] = field(default_factory=set)
    shared_open: frozenset[int] = frozenset()

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

    def set_health(self, snapshots: dict[int, EndpointHealth]) -> None:
        """Install polled or shared health snapshots (whole-dict swap), keeping this
        process's own fresher verdict on endpoints it just saw turn ready."""
        for endpoint_id, since in list(self.turned_ready.items()):
            known = snapshots.get(endpoint_id)
            if known is not None and known.checked_at >= since:
                del self.turned_ready[endpoint_id]
            elif endpoint_id in self.health:
                snapshots = {**snapshots, endpoint_id: self.health[endpoint_id]}
        self.health = snapshots

    def endpoint_ready(self, endpoint_id: int, health: EndpointHealth) -> None:
        """Route to the endpoint now: it answered its health check (the waiting path saw it
        start or wake). The database says so too by the next reload."""
        models = dict(self.models)
        for name, model in models.items():
            if any(e.id == endpoint_id for e in model.endpoints):
                endpoints = tuple(
                    replace(e, state="ready") if e.id == endpoint_id else e for e in model.endpoints
                )
                models[name] = replace(model, endpoints=endpoints)
        self.models = models
        self.health = {**self.health, endpoint_id: health}
        self.turned_ready[endpoint_id] = health.checked_at
        breaker = self.breakers.get(endpoint_id)
        if breaker is not None:
            breaker.record_success()

    def endpoints(self) -> list[EndpointRoute]:
        return [e for m in self.models.values() for e in m.endpoints]

    def breaker(self, endpoint_id: int) -> CircuitBreaker:
        breaker = self.breakers.get(endpoint_id)
        if breaker is None:
            breaker = self.breakers[endpoint_id] = CircuitBreaker(
                failures=settings.GATEWAY_CIRCUIT_FAILURES,
                cooldown=settings.GATEWAY_CIRCUIT_COOLDOWN,
                on_open=lambda: self.opened.add(endpoint_id),
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
                    circuit=self._circuit(e.id, breaker),
                )
            )
        return result

    def _circuit(self, endpoint_id: int, breaker: CircuitBreaker | None) -> CircuitState:
        """This process's breaker, unless another process opened the endpoint's breaker."""
        if endpoint_id in self.shared_open:
            return CircuitState.OPEN
        return breaker.state if breaker is not None else CircuitState.CLOSED

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
