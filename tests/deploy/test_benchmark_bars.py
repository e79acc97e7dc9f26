"""Issue 14's bars in the benchmark: judged in every repeat, two workers, a killed engine.

Pure parts only (no servers): records are built from samples, as the runner builds them.
"""

from __future__ import annotations

from deploy.benchmark import bars, report
from deploy.benchmark.engine_kill import kill_specs, served_calls
from deploy.benchmark.load import LoadSpec, RunResult, _labelled, worker_spec
from deploy.benchmark.scenarios import FULL, QUICK, Runner, RunRecord, Step, Target, build_steps
from deploy.benchmark.stats import Sample, summarize, with_cpu

LEVELS = {"streams": 1000, "streams_2w": 2000, "throughput": 100, "kill": 400}


def _record(scenario: str, level: int, target: str, repeat: int, *, ttft_ms: float,
            n: int = 10, itl_ms: float = 100.0, errors: tuple[str, ...] = (),
            died: bool | None = None) -> RunRecord:  # fmt: skip
    ok = [Sample(ttft=ttft_ms / 1000, e2e=1.0, chunks=2, gaps=[itl_ms / 1000])] * n
    failed = [Sample(ttft=float("nan"), e2e=1.0, error=reason) for reason in errors]
    summary = with_cpu(summarize(ok + failed, 1.0), None if target == "direct" else 1.0, 0.1)
    summary.engine_died = died
    return RunRecord(scenario, level, target, repeat, summary, ok + failed)


def _bar(records: list[RunRecord], target: str, starts: str) -> bars.Bar:
    found = bars.evaluate(report.lookups(records), [target], LEVELS)
    return next(bar for bar in found if bar.name.startswith(starts))


def test_a_bar_is_met_only_when_every_repeat_meets_it() -> None:
    records = [
        _record("single", 1, "direct", 0, ttft_ms=50.0),
        _record("single", 1, "caipi-uvicorn", 0, ttft_ms=51.0),
        _record("single", 1, "direct", 1, ttft_ms=50.0),
        _record("single", 1, "caipi-uvicorn", 1, ttft_ms=52.0),
    ]
    bar = _bar(records, "caipi-uvicorn", "added TTFT p50, one request")
    assert [check.measured for check in bar.checks] == ["+1.00 ms", "+2.00 ms"]
    assert [check.met for check in bar.checks] == [True, False]
    assert bar.met is False
    assert bar.as_dict()["repeats"] == [
        {"measured": "+1.00 ms", "met": True},
        {"measured": "+2.00 ms", "met": False},
    ]


def test_each_repeat_is_compared_with_direct_of_the_same_repeat() -> None:
    # Pooled over both repeats CAIPI would look 25 ms faster than direct; per repeat it is
    # 1 ms slower in each, and that is what the bar reports.
    records = [
        _record("single", 1, "direct", 0, ttft_ms=50.0),
        _record("single", 1, "caipi-uvicorn", 0, ttft_ms=51.0),
        _record("single", 1, "direct", 1, ttft_ms=100.0),
        _record("single", 1, "caipi-uvicorn", 1, ttft_ms=101.0),
    ]
    bar = _bar(records, "caipi-uvicorn", "added TTFT p50, one request")
    assert [check.measured for check in bar.checks] == ["+1.00 ms", "+1.00 ms"]
    assert bar.met


def test_streams_bar_holds_per_token_p99_within_ten_percent_of_direct() -> None:
    def run(itl_ms: float) -> bars.Bar:
        records = [
            _record("concurrency", 1000, "direct", 0, ttft_ms=50.0, itl_ms=100.0),
            _record("concurrency", 1000, "caipi-uvicorn", 0, ttft_ms=52.0, itl_ms=itl_ms),
        ]
        return _bar(records, "caipi-uvicorn", "1000 streams, one worker")

    assert run(109.0).met
    slow = run(137.0)
    assert not slow.met
    assert "ITL p99 137/100 ms" in slow.checks[0].measured


def test_streams_bar_fails_on_added_p99_or_on_any_error() -> None:
    base = _record("concurrency", 1000, "direct", 0, ttft_ms=50.0)
    late = _record("concurrency", 1000, "caipi-uvicorn", 0, ttft_ms=80.0)
    failing = _record("concurrency", 1000, "caipi-uvicorn", 0, ttft_ms=51.0, errors=("timeout",))
    assert not _bar([base, late], "caipi-uvicorn", "1000 streams").met
    assert not _bar([base, failing], "caipi-uvicorn", "1000 streams").met


def test_two_workers_are_judged_against_one_worker_of_the_same_server() -> None:
    records = [
        _record("throughput", 100, "caipi-uvicorn", 0, ttft_ms=10.0, n=100),
        _record("throughput", 100, "caipi-uvicorn-2w", 0, ttft_ms=10.0, n=170),
        _record("throughput", 100, "caipi-uvicorn", 1, ttft_ms=10.0, n=100),
        _record("throughput", 100, "caipi-uvicorn-2w", 1, ttft_ms=10.0, n=150),
    ]
    bar = _bar(records, "caipi-uvicorn-2w", "two workers: non-streaming throughput")
    assert [check.measured for check in bar.checks] == [
        "170/100 req/s = 1.70x",
        "150/100 req/s = 1.50x",
    ]
    assert not bar.met
    names = [b.name for b in bars.evaluate(report.lookups(records), ["caipi-uvicorn-2w"], LEVELS)]
    assert not any(name.startswith("added TTFT p50, one request") for name in names)


def test_two_workers_at_2000_streams_need_no_errors_and_p99_within_50_ms() -> None:
    records = [
        _record("concurrency", 2000, "direct", 0, ttft_ms=60.0),
        _record("concurrency", 2000, "caipi-uvicorn-2w", 0, ttft_ms=105.0),
    ]
    assert _bar(records, "caipi-uvicorn-2w", "two workers, 2000 streams").met
    records[1] = _record("concurrency", 2000, "caipi-uvicorn-2w", 0, ttft_ms=115.0)
    assert not _bar(records, "caipi-uvicorn-2w", "two workers, 2000 streams").met


def test_engine_kill_counts_failed_streamed_and_whole_calls_apart() -> None:
    failed = ("streamed error event", "streamed error event", "whole http 502")
    records = [
        _record("engine-kill", 400, "caipi-uvicorn", 0, ttft_ms=60.0, n=397, errors=failed,
                died=True),
        _record("engine-kill", 400, "caipi-uvicorn", 1, ttft_ms=60.0, n=400, died=True),
    ]  # fmt: skip
    bar = _bar(records, "caipi-uvicorn", "engine killed under load")
    assert bar.checks[0].measured == "failed 2/200 streamed, 1/200 whole"
    assert [check.met for check in bar.checks] == [False, True]


def test_a_kill_run_in_which_the_engine_did_not_die_proves_nothing() -> None:
    records = [_record("engine-kill", 400, "caipi-uvicorn", 0, ttft_ms=60.0, n=400, died=False)]
    bar = _bar(records, "caipi-uvicorn", "engine killed under load")
    assert not bar.met
    assert "engine did NOT die" in bar.checks[0].measured


def test_repeats_are_pooled_for_the_table_but_kept_apart_for_the_bars() -> None:
    records = [
        _record("engine-kill", 400, "caipi-uvicorn", 0, ttft_ms=60.0, died=True),
        _record("engine-kill", 400, "caipi-uvicorn", 1, ttft_ms=60.0, died=False),
    ]
    pooled = report.find(report.pool(records), "engine-kill", 400, "caipi-uvicorn")
    assert pooled is not None and pooled.requests == 20 and pooled.engine_died is False
    assert [len(rows) for rows in report.by_repeat(records)] == [1, 1]


def test_bars_table_shows_every_repeat_and_a_verdict_over_all_of_them() -> None:
    bar = bars.Bar("b", "caipi-uvicorn", (bars.Check("+1.0", True), bars.Check("+3.0", False)))
    short = bars.Bar("c", "caipi-uvicorn", (bars.Check("ok", True),))
    text = report.bars_table([bar, short])
    assert "| bar | target | repeat 1 | repeat 2 | met in every repeat |" in text
    assert "| b | caipi-uvicorn | +1.0 | **+3.0** | **no** |" in text
    assert "| c | caipi-uvicorn | ok | - | yes |" in text


def test_steps_pick_their_targets_by_name() -> None:
    steps = build_steps(QUICK, ["single", "concurrency", "engine-kill"],
                        {"main": "m", "uneven": "u", "kill": "k"}, 6.35)  # fmt: skip
    names = ["direct", "caipi-uvicorn", "caipi-uvicorn-2w", "caipi-uvicorn-baseline", "litellm"]

    def runs(step: Step) -> list[str]:
        return [name for name in names if step.applies_to(name)]

    by_level = {(s.scenario, s.level): s for s in steps}
    assert runs(by_level["single", 1]) == [
        "direct", "caipi-uvicorn", "caipi-uvicorn-baseline", "litellm"
    ]  # fmt: skip
    assert "litellm" in runs(by_level["concurrency", 100])
    assert "litellm" not in runs(by_level["concurrency", 1000])
    assert runs(by_level["concurrency", QUICK.streams_2w]) == ["direct", "caipi-uvicorn-2w"]
    assert "litellm" not in runs(by_level["engine-kill", QUICK.kill_calls])
    assert FULL.repeats == 5 and QUICK.repeats < FULL.repeats


def test_a_mixed_run_alternates_streamed_and_whole_calls_and_labels_failures() -> None:
    spec = LoadSpec(urls=("u",), model="m", api_key=None, stream=True, concurrency=4,
                    max_tokens=8, mixed=True)  # fmt: skip
    kinds = [worker_spec(spec, index).stream for index in range(4)]
    assert kinds == [True, False, True, False]
    whole = worker_spec(spec, 1)
    assert _labelled(Sample(ttft=0.0, e2e=0.0, error="http 502"), whole).error == "whole http 502"
    assert _labelled(Sample(ttft=0.0, e2e=0.0), whole).error == ""


def test_only_the_first_engine_of_the_kill_pool_dies_and_its_served_calls_are_read() -> None:
    first, *rest = kill_specs()
    assert "--die-mid-stream" in first.args(1) and all(
        "--die-mid-stream" not in spec.args(1) for spec in rest
    )
    text = (
        "# HELP vllm:request_success_total Count\n"
        'vllm:request_success_total{finished_reason="stop"} 3.0\n'
        'vllm:request_success_total{finished_reason="length"} 2.0\n'
        "vllm:request_success_created 1.7e9\n"
    )
    assert served_calls(text) == 5.0


class _Generator:
    """Stands in for the load generator: every run answers ten quick samples."""

    def __init__(self) -> None:
        self.urls: list[tuple[str, ...]] = []

    def run(self, spec: LoadSpec) -> RunResult:
        self.urls.append(spec.urls)
        return RunResult([Sample(ttft=0.05, e2e=0.1, chunks=1)] * 10, 1.0)


class _Stage:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def before(self, step: Step, target: Target) -> None:
        self.calls.append(f"before {target.name}")

    def after(self, step: Step, target: Target, record: RunRecord) -> None:
        self.calls.append(f"after {target.name}")
        record.summary.engine_died = True


def _targets(*names: str) -> list[Target]:
    return [Target(name, {"main": (name,), "kill": (name,)}) for name in names]


def test_a_stage_prepares_every_run_and_completes_its_record() -> None:
    stage = _Stage()
    generator = _Generator()
    runner = Runner(generator, _targets("direct", "caipi-uvicorn"), [],  # type: ignore[arg-type]
                    pause_s=0.0, stages={"engine-kill": stage})  # fmt: skip
    runner.run_step(Step("engine-kill", 400, "kill", "k", True, 100, repeats=2, mixed=True))
    assert stage.calls == [
        "before direct", "after direct", "before caipi-uvicorn", "after caipi-uvicorn",
        "before caipi-uvicorn", "after caipi-uvicorn", "before direct", "after direct",
    ]  # fmt: skip
    assert [(r.target, r.repeat) for r in runner.records][:2] == [
        ("direct", 0),
        ("caipi-uvicorn", 0),
    ]
    assert all(record.summary.engine_died for record in runner.records)


def test_a_step_for_two_workers_is_skipped_when_none_runs() -> None:
    generator = _Generator()
    runner = Runner(generator, _targets("direct", "caipi-uvicorn"), [],  # type: ignore[arg-type]
                    pause_s=0.0)  # fmt: skip
    runner.run_step(Step("concurrency", 2000, "main", "m", True, 64, only=("direct", "*-2w")))
    assert runner.records == [] and generator.urls == []
