"""The autoscaler's rules, one by one: each decision comes with the rule that fired."""

from __future__ import annotations

import datetime as dt

from deploy.autoscale import Decision, Rules, Sample, Signals, decide, in_warm_window

RULES = Rules(window_seconds=30, scale_up_cooldown=60, scale_down_cooldown=120)


def _decide(min_instances: int = 0, max_instances: int = 4, **signals) -> Decision:
    defaults = {"now": 1000.0, "current": 1, "ready": 1, "caipi_waiting": 0, "last_call": 990.0}
    return decide(
        rules=RULES,
        min_instances=min_instances,
        max_instances=max_instances,
        idle_seconds=300,
        signals=Signals(**{**defaults, **signals}),
    )


def _window(**values) -> tuple[Sample, ...]:
    fields = {"waiting": 0.0, "running": 1.0, "kv_usage": 0.2, **values}
    return tuple(Sample(at=at, **fields) for at in (965.0, 975.0, 985.0, 995.0))


def test_waiting_calls_at_zero_start_one_instance_at_once():
    assert _decide(current=0, ready=0, caipi_waiting=3, last_change=999.0) == Decision(
        1, "3 calls waiting and no instance"
    )


def test_an_engine_queue_sustained_over_the_window_adds_an_instance():
    decision = _decide(samples=_window(waiting=6.0))
    assert decision == Decision(2, "engine queue ≥ 4 per instance for 30 s")


def test_a_queue_that_has_not_lasted_the_whole_window_adds_nothing():
    brief = tuple(s for s in _window(waiting=6.0) if s.at > 980)
    assert _decide(samples=brief).desired == 1


def test_kv_cache_pressure_and_queue_time_each_add_an_instance():
    assert _decide(samples=_window(kv_usage=0.95)).reason == "KV cache ≥ 90% for 30 s"
    assert _decide(samples=_window(queue_time=3.0)).reason == "queue time ≥ 2 s for 30 s"


def test_the_scale_up_cool_down_holds_the_next_step():
    assert _decide(samples=_window(waiting=6.0), last_change=980.0).desired == 1


def test_max_instances_bounds_scaling_up():
    assert _decide(current=4, ready=4, samples=_window(waiting=9.0)).desired == 4


def test_idle_time_without_calls_scales_down_to_the_floor():
    assert _decide(current=2, ready=2, last_call=600.0) == Decision(
        0, "no call for 300 s (idle time)"
    )
    assert _decide(min_instances=1, current=2, ready=2, last_call=600.0).desired == 1


def test_light_load_over_the_window_removes_one_instance_after_the_cool_down():
    light = _window(running=0.1)
    assert _decide(current=3, ready=3, samples=light) == Decision(2, "light load for 30 s")
    assert _decide(current=3, ready=3, samples=light, last_change=950.0).desired == 3


def test_a_warm_window_keeps_one_instance_even_at_min_zero():
    assert _decide(current=0, ready=0, warm=True) == Decision(1, "inside a warm window")


def test_warm_windows_are_read_as_days_and_utc_hours():
    monday_9 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    saturday_9 = dt.datetime(2026, 12, 5, 9, 0, tzinfo=dt.UTC)
    assert in_warm_window(["mon-fri 08:00-18:00"], monday_9)
    assert not in_warm_window(["mon-fri 08:00-18:00"], saturday_9)
    assert in_warm_window(["sat 08:00-10:00"], saturday_9)
