"""The benchmark harness's pure parts: percentiles, SSE timing, bars, report rendering.

No servers: the benchmark itself is run by hand (``python -m deploy.benchmark``), not CI.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from deploy.benchmark import bars, litellm_env, report
from deploy.benchmark.load import LoadSpec, headers, request_body, split
from deploy.benchmark.plot import rows_from_json
from deploy.benchmark.scenarios import (
    QUICK,
    SCENARIOS,
    RunRecord,
    Target,
    build_steps,
    rotated,
)
from deploy.benchmark.sse import StreamTimer, event_data, has_content, split_events
from deploy.benchmark.stats import Sample, percentile, summarize, with_cpu

CHUNK = b'data: {"id":"x","choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n'
ROLE = b'data: {"id":"x","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}\n\n'
DONE = b"data: [DONE]\n\n"


def test_percentile_interpolates_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 99) == pytest.approx(3.97)


def test_percentile_of_nothing_is_nan_and_bad_rank_is_refused() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError, match="percentile"):
        percentile([1.0], 101)


def test_summary_ignores_failed_requests_in_latency_but_counts_them() -> None:
    samples = [
        Sample(ttft=0.010, e2e=0.100, chunks=3, gaps=[0.02, 0.04]),
        Sample(ttft=0.030, e2e=0.300, chunks=2, gaps=[0.06]),
        Sample(ttft=math.nan, e2e=1.0, error="http 500"),
    ]
    summary = summarize(samples, duration_s=2.0)
    assert summary.requests == 3
    assert summary.errors == 1
    assert summary.error_kinds == {"http 500": 1}
    assert summary.ttft_p50 == pytest.approx(20.0)
    assert summary.itl_p50 == pytest.approx(40.0)
    assert summary.throughput_rps == pytest.approx(1.0)


def test_cpu_is_charged_per_thousand_requests_and_absent_for_direct() -> None:
    summary = summarize([Sample(ttft=0.01, e2e=0.02)] * 500, duration_s=1.0)
    assert with_cpu(summary, 2.0, 1.0).cpu_per_1k == pytest.approx(4.0)
    assert math.isnan(with_cpu(summary, None, 1.0).cpu_per_1k)
    assert summary.as_dict()["cpu_per_1k"] is None


def test_sse_events_split_on_blank_lines_and_keep_the_unfinished_rest() -> None:
    events, rest = split_events(b"data: a\n\ndata: b\r\n\r\ndata: c")
    assert events == [b"data: a", b"data: b"]
    assert rest == b"data: c"
    assert event_data(b": comment\ndata: {}") == b"{}"


def test_content_is_recognised_without_parsing_json() -> None:
    assert has_content(b'{"delta":{"content":"Hi"}}')
    assert has_content(b'{"delta": {"content": "Hi"}}')
    assert has_content(b'{"choices":[{"text":"Hi"}]}')
    assert not has_content(b'{"delta":{"role":"assistant","content":""}}')
    assert not has_content(b'{"usage":{"prompt_tokens":3}}')


def test_stream_timer_times_content_chunks_across_split_reads() -> None:
    timer = StreamTimer()
    first, second = CHUNK % b"a", CHUNK % b"b"
    timer.feed(ROLE, 0.001)
    timer.feed(first[:10], 0.002)
    timer.feed(first[10:] + second[:5], 0.010)
    timer.feed(second[5:], 0.025)
    timer.feed(DONE, 0.030)
    assert timer.content_times == [0.010, 0.025]
    assert timer.gaps() == pytest.approx([0.015])
    assert timer.done
    assert not timer.error


def test_stream_timer_notices_an_error_event() -> None:
    timer = StreamTimer()
    timer.feed(b'data: {"error":{"message":"upstream died"}}\n\n', 0.1)
    assert timer.error


def test_request_body_and_headers_carry_model_stream_and_key() -> None:
    spec = LoadSpec(urls=("http://127.0.0.1:1/v1",), model="m", api_key="k", stream=True,
                    concurrency=1, max_tokens=16)  # fmt: skip
    assert b'"stream": true' in request_body(spec)
    assert b'"max_tokens": 1,' in request_body(spec, max_tokens=1)
    assert headers(spec)["Authorization"] == "Bearer k"


def test_workers_are_split_evenly_over_processes() -> None:
    assert split(1000, 2) == [500, 500]
    assert split(5, 2) == [3, 2]
    assert split(1, 4) == [1]


def test_targets_are_interleaved_in_rotating_order() -> None:
    a, b, c = (Target(name, {}) for name in "abc")
    assert [t.name for t in rotated([a, b, c], 1)] == ["b", "c", "a"]
    assert [t.name for t in rotated([a, b, c], 3)] == ["a", "b", "c"]


def test_quick_plan_builds_every_scenario() -> None:
    models = {"main": "m", "uneven": "u", "kill": "k"}
    steps = build_steps(QUICK, list(SCENARIOS), models, 1.5)
    # Every level of the plan, plus the two-worker step at its own level.
    assert [s.scenario for s in steps].count("concurrency") == len(QUICK.levels) + 1
    assert next(s for s in steps if s.scenario == "uneven").model == "u"
    assert not next(s for s in steps if s.scenario == "throughput").stream
    kill = next(s for s in steps if s.scenario == "engine-kill")
    assert (kill.model, kill.level, kill.mixed) == ("k", QUICK.kill_calls, True)
    assert {s.repeats for s in steps} == {QUICK.repeats}


def _record(scenario: str, level: int, target: str, ttft: float, rps_n: int = 10) -> RunRecord:
    samples = [Sample(ttft=ttft, e2e=ttft * 2, chunks=2, gaps=[0.01]) for _ in range(rps_n)]
    summary = with_cpu(summarize(samples, 1.0), None if target == "direct" else 1.0, 0.5)
    return RunRecord(scenario, level, target, 0, summary, samples,
                     None if target == "direct" else 1.0, 0.5)  # fmt: skip


def _rows() -> list[report.Row]:
    records = [
        _record("single", 1, "direct", 0.050),
        _record("single", 1, "caipi-uvicorn", 0.051),
        _record("single", 1, "direct", 0.050),
        _record("throughput", 100, "caipi-uvicorn", 0.01, rps_n=300),
        _record("throughput", 100, "litellm", 0.01, rps_n=100),
        _record("uneven", 48, "direct", 1.0),
        _record("uneven", 48, "caipi-uvicorn", 0.9),
    ]
    return report.pool(records)


def test_repeats_are_pooled_into_one_row_per_cell() -> None:
    rows = _rows()
    direct = report.find(rows, "single", 1, "direct")
    assert direct is not None
    assert direct.requests == 20
    assert len(rows) == 6


def test_bars_judge_overhead_throughput_and_routing() -> None:
    rows = _rows()
    found = bars.evaluate([lambda s, lv, t: report.find(rows, s, lv, t)], ["caipi-uvicorn"],
                          {"throughput": 100, "uneven": 48})  # fmt: skip
    verdicts = {bar.name.split(",")[0].split(":")[0]: bar.met for bar in found}
    assert verdicts["added TTFT p50"] is True
    assert verdicts["non-streaming throughput >= 2x LiteLLM (issue 3)"] is True
    assert verdicts["uneven endpoints"] is False


def test_markdown_has_table_bars_and_markers_and_replaces_an_old_section() -> None:
    rows = _rows()
    bar = bars.Bar("b", "caipi-uvicorn", (bars.Check("1 ms", met=False),))
    section = report.markdown(rows, [bar], {"date": "today"}, "benchmarks/plot.png")
    assert section.startswith(report.START) and section.endswith(report.END)
    assert "| single | 1 | caipi-uvicorn | 10 | 0 | 51.0 |" in section
    assert "+1.0" in section
    assert "| b | caipi-uvicorn | **1 ms** | **no** |" in section
    document = f"# Benchmarks\n\nintro\n\n{report.START}\nold\n{report.END}\n\nafter\n"
    spliced = report.splice(document, section)
    assert "old" not in spliced and "intro" in spliced and "after" in spliced


def test_litellm_config_lists_every_endpoint_and_stays_offline() -> None:
    config = litellm_env.proxy_config({"m": ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]},
                                      "least-busy")  # fmt: skip
    assert len(config["model_list"]) == 2  # type: ignore[arg-type]
    assert config["router_settings"] == {"routing_strategy": "least-busy"}
    env = litellm_env.proxy_env({"PATH": "/bin", "DATABASE_URL": "postgres://x", "REDIS_URL": "r"})
    assert "DATABASE_URL" not in env and "REDIS_URL" not in env
    assert env["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"


def test_litellm_pin_is_exact_and_not_a_compromised_release() -> None:
    version = litellm_env.pinned_version()
    assert version not in {"1.82.7", "1.82.8"}
    assert tuple(int(part) for part in version.split(".")[:2]) >= (1, 83)
    text = litellm_env.REQUIREMENTS.read_text()
    assert f"litellm=={version}" in text and "--hash=sha256:" in text


def test_results_json_round_trips_into_plot_rows(tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "results.json"
    report.write_json(path, [], rows, [], {"date": "today"})
    again = rows_from_json(path)
    assert [(r.scenario, r.level, r.target) for r in again] == [
        (r.scenario, r.level, r.target) for r in rows
    ]
    assert math.isnan(again[0].summary.cpu_per_1k)


def test_the_baseline_caipi_gets_databases_of_its_own() -> None:
    from deploy.benchmark.caipi_env import baseline_urls

    assert baseline_urls("postgresql://pg@db:5432/bench", "redis://127.0.0.1:6379/12") == (
        "postgresql://pg@db:5432/bench_baseline",
        "redis://127.0.0.1:6379/13",
    )
    assert baseline_urls(None, None) == (None, None)


def test_the_baseline_tree_runs_its_own_code_first(tmp_path: Path) -> None:
    from deploy.benchmark.caipi_env import caipi_env

    env = caipi_env(tmp_path / "data", None, None, tree=tmp_path / "before")
    assert env["PYTHONPATH"] == str(tmp_path / "before")


def test_a_baseline_tree_that_is_not_caipi_is_refused(tmp_path: Path) -> None:
    from deploy.benchmark.__main__ import parser, settings_from

    args = parser().parse_args(["--baseline-tree", str(tmp_path), "--run-dir", str(tmp_path)])
    with pytest.raises(SystemExit, match="not a CAIPI source tree"):
        settings_from(args)
