"""The benchmark's scenarios and the interleaved runner.

Each scenario is a list of steps (one load shape each). A step runs every target once
per repeat, rotating the order between repeats (a,b,c / b,c,a / c,a,b ...), so machine
noise and warm-up land on all targets alike. Per run the runner records the samples'
summary and the CPU seconds the system under test and the simulators used.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from deploy.benchmark.load import LoadGenerator, LoadSpec
from deploy.benchmark.processes import Managed
from deploy.benchmark.stats import Sample, Summary, summarize, with_cpu

logger = logging.getLogger(__name__)

SCENARIOS = ("single", "concurrency", "throughput", "uneven")


@dataclass(frozen=True, slots=True)
class Target:
    """One way to reach the simulators: directly, through CAIPI or through LiteLLM.

    ``pools`` maps a pool name ("main", "uneven") to the base URLs a client uses for
    it; ``sut`` is the server process whose CPU is charged (None for direct access).
    """

    name: str
    pools: dict[str, tuple[str, ...]]
    api_key: str | None = None
    sut: Managed | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """One load shape of a scenario, run against every target ``repeats`` times."""

    scenario: str
    level: int
    pool: str
    model: str
    stream: bool
    max_tokens: int
    requests_per_worker: int = 1
    duration_s: float | None = None
    repeats: int = 1
    ramp_s: float = 0.0
    soft_limit_s: float = 600.0


@dataclass(slots=True)
class RunRecord:
    """The outcome of one step against one target in one repeat.

    ``samples`` and the raw CPU seconds are kept so repeats can be pooled.
    """

    scenario: str
    level: int
    target: str
    repeat: int
    summary: Summary
    samples: list[Sample] = field(default_factory=list, repr=False)
    sut_cpu_s: float | None = None
    sim_cpu_s: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """Plain dict for the JSON report."""
        return {
            "scenario": self.scenario,
            "level": self.level,
            "target": self.target,
            "repeat": self.repeat,
            **self.summary.as_dict(),
        }


@dataclass(frozen=True, slots=True)
class Plan:
    """Counts for one mode (quick or full)."""

    single_requests: int
    single_repeats: int
    levels: tuple[int, ...]
    rounds: int
    level_repeats: int
    throughput_concurrency: int
    throughput_seconds: float
    uneven_concurrency: int
    uneven_rounds: int
    repeats: int
    soft_limit_s: float
    stream_tokens: int = 64
    single_tokens: int = 4


QUICK = Plan(10, 3, (10, 100, 1000), 1, 1, 100, 5.0, 48, 2, 1, 15.0)
FULL = Plan(25, 4, (10, 100, 500, 1000), 2, 2, 100, 15.0, 48, 4, 2, 60.0)


def build_steps(
    plan: Plan, scenarios: Sequence[str], models: dict[str, str], stream_s: float
) -> list[Step]:
    """The steps of the chosen scenarios, in order.

    ``models`` maps pool to model; ``stream_s`` is how long one stream of
    ``plan.stream_tokens`` takes on an idle simulator (the ramp of the concurrency steps,
    so their workers are spread over one request time instead of bursting together).
    """
    main, uneven, tokens = models["main"], models["uneven"], plan.stream_tokens
    limit = plan.soft_limit_s
    steps: dict[str, list[Step]] = {
        "single": [
            Step("single", 1, "main", main, True, plan.single_tokens, plan.single_requests,
                 None, plan.single_repeats, 0.0, limit),
        ],
        "concurrency": [
            Step("concurrency", level, "main", main, True, tokens, plan.rounds, None,
                 plan.level_repeats, stream_s if level > 1 else 0.0, limit)
            for level in plan.levels
        ],
        "throughput": [
            Step("throughput", plan.throughput_concurrency, "main", main, False, 1, 1,
                 plan.throughput_seconds, plan.repeats, 0.0, limit),
        ],
        "uneven": [
            Step("uneven", plan.uneven_concurrency, "uneven", uneven, True, tokens,
                 plan.uneven_rounds, None, plan.repeats, stream_s, limit),
        ],
    }  # fmt: skip
    return [step for name in scenarios for step in steps[name]]


def rotated(items: Sequence[Target], shift: int) -> list[Target]:
    """``items`` rotated left by ``shift`` (the interleaving order of one repeat)."""
    if not items:
        return []
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def spec_for(step: Step, target: Target) -> LoadSpec:
    """The load spec of one step against one target."""
    timeout = 300.0 if step.scenario == "uneven" else 120.0
    return LoadSpec(
        urls=target.pools[step.pool],
        model=step.model,
        api_key=target.api_key,
        stream=step.stream,
        concurrency=step.level,
        max_tokens=step.max_tokens,
        requests_per_worker=step.requests_per_worker,
        duration_s=step.duration_s,
        request_timeout_s=timeout,
        ramp_s=step.ramp_s,
        soft_limit_s=step.soft_limit_s,
        deadline_s=step.soft_limit_s + timeout + step.ramp_s + 60,
    )


@dataclass(slots=True)
class Runner:
    """Runs steps against targets with one load generator, collecting records."""

    generator: LoadGenerator
    targets: Sequence[Target]
    simulators: Sequence[Managed]
    records: list[RunRecord] = field(default_factory=list)
    on_record: Callable[[RunRecord], None] | None = None
    pause_s: float = 2.0

    def run_step(self, step: Step) -> None:
        """Run one step: every repeat visits every target, in rotating order."""
        for repeat in range(step.repeats):
            for target in rotated(self.targets, repeat):
                # Let the previous target finish its after-work (usage writes, closes).
                time.sleep(self.pause_s)
                record = self._run_once(step, target, repeat)
                self.records.append(record)
                if self.on_record:
                    self.on_record(record)

    def _run_once(self, step: Step, target: Target, repeat: int) -> RunRecord:
        sut_before = target.sut.cpu_seconds() if target.sut else None
        sims_before = sum(sim.cpu_seconds() for sim in self.simulators)
        result = self.generator.run(spec_for(step, target))
        sims_used = sum(sim.cpu_seconds() for sim in self.simulators) - sims_before
        sut_used = (
            target.sut.cpu_seconds() - sut_before if target.sut and sut_before is not None else None
        )
        summary = with_cpu(summarize(result.samples, result.duration_s), sut_used, sims_used)
        return RunRecord(
            step.scenario, step.level, target.name, repeat, summary, result.samples,
            sut_used, sims_used,
        )  # fmt: skip


def log_record(record: RunRecord) -> None:
    """One progress line per run."""
    s = record.summary
    cpu = "" if math.isnan(s.cpu_per_1k) else f" cpu/1k {s.cpu_per_1k:.2f}s"
    logger.warning(
        "%-11s c=%-4d %-16s #%d n=%d err=%d ttft p50 %.1f p99 %.1f ms itl p50 %.1f ms"
        " %.0f rps%s",
        record.scenario, record.level, record.target, record.repeat, s.requests, s.errors,
        s.ttft_p50, s.ttft_p99, s.itl_p50, s.throughput_rps, cpu,
    )  # fmt: skip
