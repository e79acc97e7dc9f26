"""The benchmark's scenarios and the interleaved runner.

Each scenario is a list of steps (one load shape each). A step runs every target it
applies to once per repeat, rotating the order between repeats (a,b,c / b,c,a / c,a,b
...), so machine noise and warm-up land on all targets alike. Per run the runner records
the samples' summary and the CPU seconds the system under test and the simulators used.
A scenario may have a stage (``Stage``) that prepares each run and completes its record
(the engine-kill scenario restarts the engine killed in the run before).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol

from deploy.benchmark.load import LoadGenerator, LoadSpec
from deploy.benchmark.processes import Managed
from deploy.benchmark.stats import Sample, Summary, summarize, with_cpu

logger = logging.getLogger(__name__)

SCENARIOS = ("single", "concurrency", "throughput", "uneven", "engine-kill")
# Steps skip targets by name pattern: two-worker targets run only the steps of their bars
# (and the streams, to compare); LiteLLM, the reference, runs up to REFERENCE_LEVEL streams
# (beyond, it needs minutes per run and fails hundreds of calls: docs/benchmarks.md).
TWO_WORKERS = "*-2w"
REFERENCE_LEVEL = 100


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
    skip: tuple[str, ...] = ()
    only: tuple[str, ...] = ()
    mixed: bool = False

    def applies_to(self, target: str) -> bool:
        """Whether ``target`` runs this step (``only`` and ``skip`` are name patterns)."""
        if self.only and not any(fnmatchcase(target, pattern) for pattern in self.only):
            return False
        return not any(fnmatchcase(target, pattern) for pattern in self.skip)


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
    """Counts for one mode (quick or full); every step runs ``repeats`` times."""

    repeats: int
    single_requests: int
    levels: tuple[int, ...]
    rounds: int
    throughput_concurrency: int
    throughput_seconds: float
    uneven_concurrency: int
    uneven_rounds: int
    soft_limit_s: float
    streams_2w: int = 2000
    kill_calls: int = 400
    kill_tokens: int = 100
    stream_tokens: int = 64
    single_tokens: int = 4


QUICK = Plan(2, 10, (100, 1000), 1, 100, 5.0, 48, 1, 15.0)
# Full: five repeats of the bars' steps in about 20 minutes (docs/benchmarks.md, "How to run it").
FULL = Plan(5, 15, (1000,), 1, 100, 6.0, 48, 2, 30.0)


def build_steps(
    plan: Plan, scenarios: Sequence[str], models: dict[str, str], stream_s: float
) -> list[Step]:
    """The steps of the chosen scenarios, in order.

    ``models`` maps pool to model; ``stream_s`` is how long one stream of
    ``plan.stream_tokens`` takes on an idle simulator (the ramp of the concurrency steps,
    so their workers are spread over one request time instead of bursting together).
    """
    main, tokens, limit, n = models["main"], plan.stream_tokens, plan.soft_limit_s, plan.repeats

    def streams(level: int, skip: tuple[str, ...] = (), only: tuple[str, ...] = ()) -> Step:
        return Step("concurrency", level, "main", main, True, tokens, plan.rounds, None, n,
                    stream_s if level > 1 else 0.0, limit, skip=skip, only=only)  # fmt: skip

    steps: dict[str, list[Step]] = {
        "single": [
            Step("single", 1, "main", main, True, plan.single_tokens, plan.single_requests,
                 None, n, 0.0, limit, skip=(TWO_WORKERS,)),
        ],
        "concurrency": [
            *(streams(level, skip=("litellm",) if level > REFERENCE_LEVEL else ())
              for level in plan.levels),
            streams(plan.streams_2w, only=("direct", TWO_WORKERS)),
        ],
        "throughput": [
            Step("throughput", plan.throughput_concurrency, "main", main, False, 1, 1,
                 plan.throughput_seconds, n, 0.0, limit),
        ],
        "uneven": [
            Step("uneven", plan.uneven_concurrency, "uneven", models["uneven"], True, tokens,
                 plan.uneven_rounds, None, n, stream_s, limit, skip=(TWO_WORKERS,)),
        ],
        "engine-kill": [
            Step("engine-kill", plan.kill_calls, "kill", models["kill"], True, plan.kill_tokens,
                 1, None, n, 0.0, limit, skip=("litellm",), mixed=True),
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
        mixed=step.mixed,
        soft_limit_s=step.soft_limit_s,
        deadline_s=step.soft_limit_s + timeout + step.ramp_s + 60,
    )


class Stage(Protocol):
    """Prepares each run of a scenario and completes its record (see ``engine_kill``)."""

    def before(self, step: Step, target: Target) -> None: ...

    def after(self, step: Step, target: Target, record: RunRecord) -> None: ...


@dataclass(slots=True)
class Runner:
    """Runs steps against targets with one load generator, collecting records."""

    generator: LoadGenerator
    targets: Sequence[Target]
    simulators: Sequence[Managed]
    records: list[RunRecord] = field(default_factory=list)
    on_record: Callable[[RunRecord], None] | None = None
    pause_s: float = 2.0
    stages: dict[str, Stage] = field(default_factory=dict)

    def run_step(self, step: Step) -> None:
        """Run one step: every repeat visits every target it applies to, in rotating order."""
        targets = [target for target in self.targets if step.applies_to(target.name)]
        if step.only and all(target.name == "direct" for target in targets):
            return  # a step for particular targets (two workers), none of which runs
        for repeat in range(step.repeats):
            for target in rotated(targets, repeat):
                # Let the previous target finish its after-work (usage writes, closes).
                time.sleep(self.pause_s)
                record = self._run_once(step, target, repeat)
                self.records.append(record)
                if self.on_record:
                    self.on_record(record)

    def _run_once(self, step: Step, target: Target, repeat: int) -> RunRecord:
        stage = self.stages.get(step.scenario)
        if stage is not None:
            stage.before(step, target)
        sut_before = target.sut.cpu_seconds() if target.sut else None
        sims_before = sum(sim.cpu_seconds() for sim in self.simulators)
        result = self.generator.run(spec_for(step, target))
        sims_used = sum(sim.cpu_seconds() for sim in self.simulators) - sims_before
        sut_used = (
            target.sut.cpu_seconds() - sut_before if target.sut and sut_before is not None else None
        )
        summary = with_cpu(summarize(result.samples, result.duration_s), sut_used, sims_used)
        record = RunRecord(
            step.scenario, step.level, target.name, repeat, summary, result.samples,
            sut_used, sims_used,
        )  # fmt: skip
        if stage is not None:
            stage.after(step, target, record)
        return record


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
