"""Autoscaling: how many instances a deployment should have now, and why.

A pure function of the signals (no I/O), so every rule is tested directly and the reason
stored with each ``ScalingDecision`` is exactly the rule that fired. The signals are the
engines' own (``vllm:num_requests_waiting``, mean queue time, KV-cache usage, each per
ready instance and sampled every reconciler tick over ``window_seconds``) and CAIPI's own
queue (calls waiting for the model, from ``deploy.demand``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Rules:
    """A deployment's scaling rules (``Deployment.scaling``); every field has a default."""

    window_seconds: float = 30.0
    waiting_per_instance: float = 4.0
    queue_time_seconds: float = 2.0
    kv_cache_high: float = 0.9
    running_per_instance_low: float = 0.5
    scale_up_cooldown: float = 30.0
    scale_down_cooldown: float = 120.0

    @classmethod
    def from_spec(cls, scaling: dict[str, Any]) -> Rules:
        known = {f.name for f in fields(cls)}
        return cls(**{k: float(v) for k, v in scaling.items() if k in known and v is not None})


@dataclass(frozen=True)
class Sample:
    """One tick's engine signals, averaged per ready instance (KV usage: the fullest)."""

    at: float
    waiting: float
    running: float
    kv_usage: float
    queue_time: float | None = None
    caipi_waiting: int = 0


@dataclass(frozen=True)
class Signals:
    """Everything one decision looks at. ``current`` counts instances that are starting,
    ready or asleep (not draining); ``last_change`` is the last decision's time."""

    now: float
    current: int
    ready: int
    caipi_waiting: int
    last_call: float | None
    samples: tuple[Sample, ...] = ()
    last_change: float | None = None
    warm: bool = False
    warm_reason: str = ""  # which window (default: "inside a warm window")


@dataclass(frozen=True)
class Decision:
    desired: int
    reason: str


def _sustained(signals: Signals, rules: Rules) -> tuple[Sample, ...]:
    """The window's samples if they cover the whole window, else () (not sustained yet)."""
    window = [s for s in signals.samples if s.at >= signals.now - rules.window_seconds]
    if not window or window[0].at > signals.now - rules.window_seconds * 0.8:
        return ()
    return tuple(window)


def _pressure(window: tuple[Sample, ...], rules: Rules) -> str | None:
    """Which engine signal stayed over its threshold for the whole window, if any."""
    if window and min(s.waiting for s in window) >= rules.waiting_per_instance:
        per = rules.waiting_per_instance
        return f"engine queue ≥ {per:g} per instance for {rules.window_seconds:g} s"
    times = [s.queue_time for s in window]
    if window and all(t is not None and t >= rules.queue_time_seconds for t in times):
        return f"queue time ≥ {rules.queue_time_seconds:g} s for {rules.window_seconds:g} s"
    if window and min(s.kv_usage for s in window) >= rules.kv_cache_high:
        return f"KV cache ≥ {rules.kv_cache_high:.0%} for {rules.window_seconds:g} s"
    if window and min(s.caipi_waiting for s in window) > 0:
        return f"calls waiting in CAIPI for {rules.window_seconds:g} s with every instance ready"
    return None


def decide(
    *, rules: Rules, min_instances: int, max_instances: int, idle_seconds: float, signals: Signals
) -> Decision:
    """The desired instance count, within [floor, max_instances], and the rule that set it.

    1. The floor is ``min_instances``, at least 1 inside a warm window.
    2. Calls waiting in CAIPI with no instance at all: start one now (no cool-down).
    3. Engine pressure sustained over the window (waiting requests, queue time, KV cache),
       or calls waiting in CAIPI over the whole window although every instance is ready:
       one more, after the scale-up cool-down.
    4. No call for ``idle_seconds`` (and none waiting): down to the floor.
    5. Light load over the whole window: one fewer, after the scale-down cool-down.
    An unchanged count comes back with an empty reason.
    """
    now, current = signals.now, signals.current
    floor = max(min_instances, 1 if signals.warm else 0)
    since_change = now - signals.last_change if signals.last_change is not None else None
    if current < floor:
        warm_why = signals.warm_reason or "inside a warm window"
        why = warm_why if floor > min_instances else "below min_instances"
        return Decision(min(floor, max_instances), why)
    if current == 0 and signals.caipi_waiting > 0:
        return Decision(1, f"{signals.caipi_waiting} calls waiting and no instance")
    window = _sustained(signals, rules)
    pressure = _pressure(window, rules)
    up_ok = since_change is None or since_change >= rules.scale_up_cooldown
    if pressure and current < max_instances and up_ok:
        return Decision(current + 1, pressure)
    if current > max_instances:
        return Decision(max_instances, "above max_instances")
    quiet_since = max(signals.last_call or 0.0, signals.last_change or 0.0)
    if current > floor and signals.caipi_waiting == 0 and now - quiet_since >= idle_seconds:
        return Decision(floor, f"no call for {idle_seconds:g} s (idle time)")
    down_ok = since_change is None or since_change >= rules.scale_down_cooldown
    light = window and all(
        s.running < rules.running_per_instance_low and s.waiting == 0 for s in window
    )
    if light and current > max(floor, 1) and down_ok and signals.caipi_waiting == 0:
        return Decision(current - 1, f"light load for {rules.window_seconds:g} s")
    return Decision(current, "")


def in_warm_window(windows: list[str], now: dt.datetime) -> bool:
    """True when ``now`` (UTC) falls in one of the windows (``"mon-fri 08:00-18:00"``)."""
    day = _DAYS[now.weekday()]
    clock = now.strftime("%H:%M")
    for window in windows:
        days, hours = window.split()
        first, _, last = days.partition("-")
        span = _DAYS[_DAYS.index(first) : _DAYS.index(last or first) + 1]
        start, end = hours.split("-")
        if day in span and start <= clock < end:
            return True
    return False
