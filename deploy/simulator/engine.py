"""The simulated engine: slots, a waiting queue, token timing and failure injection.

Timing model. A request waits until one of ``max_num_seqs`` slots is free, then its first
token appears ``ttft`` seconds after admission and every further token ``tpot`` seconds
after the previous one, stretched by ``1 + slowdown * running / max_num_seqs`` to mimic
a GPU batch that slows as it fills. Token times are accumulated from their ideal
schedule (not from "now"), so a late event loop catches up instead of drifting.

Cost model. No coroutine, task or timer per request: each sequence is a small object
that waits in a millisecond "wheel" bucket for its next *emission* (a token, a
``stream_interval`` group, or, for a non-streaming answer, the whole rest after the
first token). One loop timer per occupied millisecond runs the whole bucket; measured,
that costs ~0.1 us per token against ~2 us for a loop timer per token, and libuv timers
have millisecond resolution anyway. The sink a sequence carries turns emissions into
bytes; the engine never formats anything.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from deploy.simulator.config import KV_BLOCK_SIZE, SimulatorConfig
from deploy.simulator.metrics import SchedulerState, SimulatorMetrics
from deploy.simulator.text import apply_stop, generate_pieces

logger = logging.getLogger(__name__)

WAITING, RUNNING, DONE = 0, 1, 2
Fate = Literal["ok", "error", "hang"]


class Sink(Protocol):
    """Receives emissions: ``seq.pieces[start:end]`` became visible.

    ``end == len(seq.pieces)`` marks the last call for the sequence. Never called
    after the sequence was cancelled.
    """

    def __call__(self, seq: Sequence, start: int, end: int) -> None: ...


class Clock(Protocol):
    """What the engine needs of its event loop: the time, and a timer at a given time.

    An asyncio loop is one; tests pass a manual clock so that timing is exact, not measured.
    """

    def time(self) -> float: ...

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Any: ...


@dataclass(slots=True, eq=False)
class Sequence:
    """One generation request as the engine sees it (identity-hashed)."""

    prompt_tokens: int
    pieces: tuple[str, ...]
    finish_reason: str
    stop_reason: str | None
    sink: Sink
    group: int = 1  # tokens per emission after the first; 0 means "all the rest at once"
    arrived: float = 0.0
    admitted: float = 0.0
    first_token_at: float = 0.0
    emitted: int = 0
    due: float = 0.0
    state: int = WAITING


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """What a request will generate, decided when it arrives."""

    pieces: tuple[str, ...]
    finish_reason: str
    stop_reason: str | None


class Engine:
    """Schedules sequences on a fixed number of slots; single-threaded (event loop only)."""

    def __init__(self, config: SimulatorConfig, loop: Clock) -> None:
        self.config = config
        self._loop = loop
        self._running: set[Sequence] = set()
        # An insertion-ordered dict is a FIFO with O(1) removal of a cancelled entry.
        self._waiting: dict[Sequence, None] = {}
        self._wheel: dict[int, list[Sequence]] = {}  # due millisecond -> sequences
        self._lengths = random.Random(config.seed)
        self._faults = random.Random(config.seed + 1)
        self._inference_requests = 0
        self.metrics = SimulatorMetrics(config.model_name, self.state, legacy=config.legacy_metrics)

    # -- decisions taken when a request arrives ------------------------------------

    def fate(self) -> Fate:
        """Draw whether the next request is served, fails with 500, or hangs."""
        draw = self._faults.random()
        if draw < self.config.error_rate:
            return "error"
        if draw < self.config.error_rate + self.config.hang_rate:
            return "hang"
        return "ok"

    def count_inference_request(self) -> bool:
        """Count one inference request; True when it is the one ``--die-after`` names."""
        self._inference_requests += 1
        return self._inference_requests == self.config.die_after

    def plan(
        self,
        prompt: str,
        *,
        max_tokens: int,
        min_tokens: int = 0,
        ignore_eos: bool = False,
        stop: tuple[str, ...] = (),
        offset: int = 0,
    ) -> OutputPlan:
        """Decide the answer's tokens and finish reason.

        The length is drawn from ``--output-dist`` around ``--output-tokens`` (the
        simulated "end of sequence"), raised to ``min_tokens`` and capped by
        ``max_tokens``; hitting the cap finishes with "length", as vLLM reports it.
        ``offset`` tokens of the answer were already written (``continue_final_message``):
        the plan is the rest of the answer the same prompt would have had from the start.
        """
        drawn = max(self._draw_length() - offset, 1)
        natural = max_tokens if ignore_eos else max(drawn, min_tokens)
        count = min(natural, max_tokens)
        finish = "length" if natural >= max_tokens else "stop"
        pieces = generate_pieces(self.config.seed, prompt, offset + count)[offset:]
        kept, matched = apply_stop(pieces, stop)
        if matched is not None:
            return OutputPlan(kept, "stop", matched)
        return OutputPlan(pieces, finish, None)

    def _draw_length(self) -> int:
        mean = self.config.output_tokens
        if self.config.output_dist == "uniform":
            return self._lengths.randint(1, 2 * mean - 1)
        if self.config.output_dist == "exponential":
            return max(1, round(self._lengths.expovariate(1.0 / mean)))
        return mean

    # -- scheduling ------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while any request runs or waits."""
        return bool(self._running or self._waiting)

    def submit(self, seq: Sequence) -> None:
        """Queue ``seq``; it starts at once when a slot is free."""
        seq.arrived = self._loop.time()
        if len(self._running) < self.config.max_num_seqs and not self._waiting:
            self._admit(seq, seq.arrived)
        else:
            self._waiting[seq] = None

    def cancel(self, seq: Sequence) -> None:
        """Abort ``seq`` (client went away): free its slot or queue place. Idempotent."""
        if seq.state == DONE:
            return
        now = self._loop.time()
        if seq.state == WAITING:
            self._waiting.pop(seq, None)
            seq.admitted = now
        # A running sequence stays in its wheel bucket; _run_tick skips it once DONE.
        was_running = seq.state == RUNNING
        self._retire(seq, now, "abort")
        if was_running:
            self._fill_slots(now)

    def _admit(self, seq: Sequence, now: float) -> None:
        seq.state = RUNNING
        seq.admitted = now
        self._running.add(seq)
        seq.due = now + self.config.ttft
        self._schedule(seq)

    def _fill_slots(self, now: float) -> None:
        while self._waiting and len(self._running) < self.config.max_num_seqs:
            seq = next(iter(self._waiting))
            del self._waiting[seq]
            self._admit(seq, now)

    def _token_time(self) -> float:
        load = len(self._running) / self.config.max_num_seqs
        return self.config.tpot * (1.0 + self.config.slowdown * load)

    def _schedule(self, seq: Sequence) -> None:
        tick = math.ceil(seq.due * 1000)
        bucket = self._wheel.get(tick)
        if bucket is None:
            self._wheel[tick] = [seq]
            self._loop.call_at(tick / 1000, self._run_tick, tick)
        else:
            bucket.append(seq)

    def _run_tick(self, tick: int) -> None:
        # Popped first: a sequence re-scheduled into this same tick (tpot 0) lands in a
        # fresh bucket and runs on the next loop iteration, never in this loop.
        for seq in self._wheel.pop(tick):
            if seq.state != RUNNING:
                continue
            try:
                self._emit(seq)
            except Exception:
                # A failing sink must not strand the rest of the bucket or keep a slot.
                logger.exception("emitting a token failed; aborting the sequence")
                self.cancel(seq)

    def _emit(self, seq: Sequence) -> None:
        now = self._loop.time()
        start, total = seq.emitted, len(seq.pieces)
        if start == 0:
            seq.first_token_at = now
            self.metrics.record_first_token(now - seq.arrived)
            end = min(1, total)
        else:
            end = total if seq.group == 0 else min(total, start + seq.group)
        seq.emitted = end
        if end >= total:
            self._retire(seq, now, seq.finish_reason)
            self._fill_slots(now)
        else:
            following = total if seq.group == 0 else min(total, end + seq.group)
            seq.due += (following - end) * self._token_time()
            self._schedule(seq)
        seq.sink(seq, start, end)

    def _retire(self, seq: Sequence, now: float, reason: str) -> None:
        self._running.discard(seq)
        seq.state = DONE
        tpot = None
        if reason != "abort" and seq.emitted > 1:
            tpot = (now - seq.first_token_at) / (seq.emitted - 1)
        self.metrics.record_finished(
            reason=reason,
            prompt_tokens=seq.prompt_tokens,
            generation_tokens=seq.emitted,
            e2e=now - seq.arrived,
            queued=seq.admitted - seq.arrived,
            tpot=tpot,
        )

    # -- observation -----------------------------------------------------------------

    def state(self) -> SchedulerState:
        """Return the gauges vLLM exports: running, waiting and KV-cache usage."""
        now = self._loop.time()
        blocks = sum(
            math.ceil((seq.prompt_tokens + self._generated(seq, now)) / KV_BLOCK_SIZE)
            for seq in self._running
        )
        usage = min(1.0, blocks / self.config.kv_cache_blocks)
        return SchedulerState(len(self._running), len(self._waiting), usage)

    def _generated(self, seq: Sequence, now: float) -> int:
        # Estimated from time so a non-streaming answer fills the cache gradually too.
        if seq.emitted == 0:
            return 0
        if self.config.tpot <= 0:
            return len(seq.pieces)
        return min(len(seq.pieces), 1 + int((now - seq.first_token_at) / self.config.tpot))
