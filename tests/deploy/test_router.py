"""The routing decision (a pure function) and the circuit breaker."""

from __future__ import annotations

import random
from collections import Counter

from deploy.router import Candidate, CircuitBreaker, CircuitState, choose_endpoint


def picks(candidates, n=2000, **kwargs) -> Counter[int]:
    rng = random.Random(7)
    return Counter(
        choose_endpoint(candidates, rng=rng, **kwargs).endpoint_id  # type: ignore[union-attr]
        for _ in range(n)
    )


def test_ties_are_spread_over_all_equal_endpoints():
    counts = picks([Candidate(1), Candidate(2), Candidate(3)])
    assert set(counts) == {1, 2, 3}
    assert min(counts.values()) > 500


def test_it_prefers_the_least_loaded_endpoint():
    busy = Candidate(1, running=8, inflight=3)
    idle = Candidate(2, running=1)
    assert choose_endpoint([busy, idle]).endpoint_id == 2


def test_waiting_requests_weigh_more_than_running_ones():
    queued = Candidate(1, running=4, waiting=2)
    running = Candidate(2, running=7)
    assert choose_endpoint([queued, running]).endpoint_id == 2


def test_gateway_inflight_counts_even_when_engine_metrics_are_stale():
    stale = Candidate(1, running=0, inflight=10)
    assert choose_endpoint([stale, Candidate(2, running=2)]).endpoint_id == 2


def test_a_nearly_full_kv_cache_is_avoided():
    full = Candidate(1, running=1, kv_usage=0.99)
    assert choose_endpoint([full, Candidate(2, running=3)]).endpoint_id == 2


def test_weights_shift_load_towards_the_heavier_endpoint():
    heavy, light = Candidate(1, weight=3, running=5), Candidate(2, weight=1, running=2)
    assert choose_endpoint([heavy, light]).endpoint_id == 1


def test_only_ready_healthy_closed_untried_endpoints_are_eligible():
    candidates = [
        Candidate(1, state="draining"),
        Candidate(2, healthy=False),
        Candidate(3, circuit=CircuitState.OPEN),
        Candidate(4),
        Candidate(5, circuit=CircuitState.HALF_OPEN, running=50),
    ]
    assert choose_endpoint(candidates, exclude=frozenset({4})).endpoint_id == 5
    assert choose_endpoint(candidates[:3]) is None
    assert choose_endpoint([]) is None


def test_the_same_affinity_key_goes_to_the_same_endpoint():
    candidates = [Candidate(i) for i in range(1, 6)]
    chosen = {choose_endpoint(candidates, affinity_key="conv-42").endpoint_id for _ in range(50)}
    assert len(chosen) == 1


def test_affinity_keys_are_spread_over_endpoints():
    candidates = [Candidate(i) for i in range(1, 4)]
    homes = Counter(
        choose_endpoint(candidates, affinity_key=f"conv-{n}").endpoint_id for n in range(600)
    )
    assert set(homes) == {1, 2, 3}
    assert min(homes.values()) > 120


def test_a_much_busier_affine_endpoint_is_avoided():
    candidates = [Candidate(i) for i in range(1, 4)]
    home = choose_endpoint(candidates, affinity_key="conv-7").endpoint_id
    loaded = [Candidate(i, running=20 if i == home else 0) for i in range(1, 4)]
    assert choose_endpoint(loaded, affinity_key="conv-7").endpoint_id != home
    slightly = [Candidate(i, running=1 if i == home else 0) for i in range(1, 4)]
    assert choose_endpoint(slightly, affinity_key="conv-7").endpoint_id == home


def test_removing_an_endpoint_only_moves_the_keys_that_lived_on_it():
    everyone = [Candidate(i) for i in range(1, 5)]
    keys = [f"k{n}" for n in range(200)]
    before = {k: choose_endpoint(everyone, affinity_key=k).endpoint_id for k in keys}
    after = {k: choose_endpoint(everyone[1:], affinity_key=k).endpoint_id for k in keys}
    assert all(after[k] == before[k] for k in keys if before[k] != 1)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_consecutive_failures_and_probes_after_cooldown():
    clock = Clock()
    breaker = CircuitBreaker(failures=3, cooldown=10, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == CircuitState.CLOSED
    breaker.record_failure()
    assert breaker.state == CircuitState.OPEN and not breaker.acquire()
    clock.now = 10.5
    assert breaker.state == CircuitState.HALF_OPEN
    assert breaker.acquire()  # the one probe
    assert not breaker.acquire()  # nobody else while it is out
    breaker.record_success()
    assert breaker.state == CircuitState.CLOSED


def test_a_failed_probe_opens_the_breaker_again():
    clock = Clock()
    breaker = CircuitBreaker(failures=1, cooldown=5, clock=clock)
    breaker.record_failure()
    clock.now = 6
    assert breaker.acquire()
    breaker.record_failure()
    assert breaker.state == CircuitState.OPEN
    clock.now = 12
    assert breaker.state == CircuitState.HALF_OPEN


def test_a_success_resets_the_failure_streak():
    breaker = CircuitBreaker(failures=2, cooldown=5)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == CircuitState.CLOSED
