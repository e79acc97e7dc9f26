"""The routing decision (a pure function) and the per-endpoint circuit breaker.

``choose_endpoint`` sees plain numbers — no I/O, no clock, no Django — so it is unit-tested
exhaustively and shared by the interactive relay and the queued (Celery) path alike.
"""

from __future__ import annotations

import enum
import hashlib
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# An engine's own queue costs time to first token for every request behind it, so one
# waiting request counts like this many running ones.
WAITING_PENALTY = 2.0
# KV-cache use above this fraction means the engine will soon preempt; penalise it, up to
# KV_PENALTY extra load units when the cache is full.
KV_SOFT_LIMIT = 0.8
KV_PENALTY = 10.0
# The affine endpoint keeps the call unless its score exceeds the best one by this factor
# plus this many load units (per weight): prefix-cache reuse is worth a little queueing.
AFFINITY_FACTOR = 1.5
AFFINITY_MARGIN = 2.0
# Scores closer than this are a tie (spread randomly, never piled onto one endpoint).
TIE_EPSILON = 1e-9


class CircuitState(enum.StrEnum):
    """A breaker's state: closed (normal), open (skipped), half-open (one probe allowed)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the router knows of one endpoint at decision time.

    ``running``/``waiting``/``kv_usage`` come from the engine's last scraped /metrics;
    ``inflight`` is the gateway's own live count of calls it has open on the endpoint
    (all gateway processes together, approximately). ``healthy`` is the health poller's
    verdict; ``state`` the endpoint's administrative state (only "ready" takes calls).
    """

    endpoint_id: int
    weight: int = 1
    state: str = "ready"
    healthy: bool = True
    running: float = 0.0
    waiting: float = 0.0
    kv_usage: float = 0.0
    inflight: int = 0
    circuit: CircuitState = CircuitState.CLOSED


def load_score(candidate: Candidate) -> float:
    """Estimated load per unit of weight; lower is better.

    The engine's numbers are up to one poll old, the gateway's in-flight count is live, so
    the larger of the two estimates of occupancy is taken, then queueing and a nearly full
    KV cache are penalised. ``+ 1`` makes weight matter between idle endpoints too.
    """
    occupancy = max(float(candidate.inflight), candidate.running + candidate.waiting)
    kv_excess = max(0.0, candidate.kv_usage - KV_SOFT_LIMIT) / (1.0 - KV_SOFT_LIMIT)
    load = occupancy + WAITING_PENALTY * candidate.waiting + KV_PENALTY * min(kv_excess, 1.0)
    return (load + 1.0) / max(candidate.weight, 1)


def rendezvous_rank(key: str, candidate: Candidate) -> float:
    """Weighted rendezvous (highest random weight) score of ``candidate`` for ``key``.

    Every process computes the same ranking without shared state, and removing one
    endpoint only moves the keys that lived on it.
    """
    digest = hashlib.blake2b(f"{key}|{candidate.endpoint_id}".encode(), digest_size=8).digest()
    unit = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)  # in (0, 1)
    return -max(candidate.weight, 1) / math.log(unit)


def choose_endpoint(
    candidates: Iterable[Candidate],
    *,
    affinity_key: str | None = None,
    exclude: frozenset[int] = frozenset(),
    rng: random.Random | None = None,
) -> Candidate | None:
    """Pick the endpoint for one call, or None when no endpoint may take it.

    1. Keep candidates that are ready, healthy, whose circuit is not open, and that were
       not already tried for this call (``exclude``).
    2. Score each by ``load_score`` (engine load and gateway in-flight, per weight).
    3. With an ``affinity_key`` (a conversation or template prefix hash), the endpoint that
       ranks first by weighted rendezvous hashing wins — unless its score is more than
       ``AFFINITY_FACTOR`` x best + ``AFFINITY_MARGIN`` (much busier), then fall through.
    4. Otherwise take the lowest score; ties are broken uniformly at random, so equal
       endpoints share the traffic instead of the first one taking it all.
    """
    eligible = [
        c
        for c in candidates
        if c.state == "ready"
        and c.healthy
        and c.circuit != CircuitState.OPEN
        and c.endpoint_id not in exclude
    ]
    if not eligible:
        return None
    scores = [load_score(c) for c in eligible]
    best = min(scores)
    if affinity_key is not None:
        affine = max(range(len(eligible)), key=lambda i: rendezvous_rank(affinity_key, eligible[i]))
        if scores[affine] <= best * AFFINITY_FACTOR + AFFINITY_MARGIN:
            return eligible[affine]
    tied = [c for c, s in zip(eligible, scores, strict=True) if s - best <= TIE_EPSILON]
    return tied[0] if len(tied) == 1 else (rng or random).choice(tied)


class CircuitBreaker:
    """Stops traffic to an endpoint that keeps failing, then probes it with one call.

    ``failures`` consecutive failures open the circuit for ``cooldown`` seconds; after
    that it is half-open: ``acquire`` lets exactly one probe call through. The probe's
    success closes the circuit, its failure opens it again. Each gateway process counts the
    failures of its own calls; ``on_open`` is called each time the circuit opens, so the
    process can tell the others (caipi/gateway/breakers.py). Not thread-safe (one event loop).
    """

    __slots__ = (
        "_clock",
        "_cooldown",
        "_failures",
        "_on_open",
        "_opened_at",
        "_probing",
        "_streak",
    )

    def __init__(
        self,
        *,
        failures: int = 3,
        cooldown: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        on_open: Callable[[], None] | None = None,
    ) -> None:
        self._failures = failures
        self._cooldown = cooldown
        self._clock = clock
        self._on_open = on_open
        self._streak = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> CircuitState:
        """OPEN while cooling down or while a half-open probe is out, else as named."""
        if self._opened_at is None:
            return CircuitState.CLOSED
        if self._probing or self._clock() - self._opened_at < self._cooldown:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN

    def acquire(self) -> bool:
        """Claim the right to send one call; False when the circuit forbids it."""
        state = self.state
        if state == CircuitState.OPEN:
            return False
        if state == CircuitState.HALF_OPEN:
            self._probing = True
        return True

    def record_success(self) -> None:
        self._streak = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        self._streak += 1
        if self._probing or self._streak >= self._failures:
            self._opened_at = self._clock()
            if self._on_open is not None:
                self._on_open()
        self._probing = False

    @property
    def cooldown(self) -> float:
        return self._cooldown

    def release(self) -> None:
        """Forget a claimed probe that ended neither way (e.g. the client left)."""
        self._probing = False
