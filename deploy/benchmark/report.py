"""Results as a Markdown table (spliced into docs/benchmarks.md), a JSON file and a plot.

Repeats of a step are pooled per (scenario, level, target): percentiles over all their
samples, throughput over their summed wall time, CPU summed. "Added" columns compare a
target with direct access in the same step (difference of the percentiles).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.benchmark.bars import Bar
from deploy.benchmark.scenarios import RunRecord
from deploy.benchmark.stats import Summary, summarize, with_cpu

START = "<!-- benchmark:start -->"
END = "<!-- benchmark:end -->"
DIRECT = "direct"


@dataclass(frozen=True, slots=True)
class Row:
    """One pooled line of the table."""

    scenario: str
    level: int
    target: str
    summary: Summary


def pool(records: Sequence[RunRecord]) -> list[Row]:
    """Pool repeats into one row per (scenario, level, target), in first-seen order."""
    groups: dict[tuple[str, int, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.scenario, record.level, record.target), []).append(record)
    rows = []
    for (scenario, level, target), group in groups.items():
        samples = [s for r in group for s in r.samples]
        summary = summarize(samples, sum(r.summary.duration_s for r in group))
        sut = [r.sut_cpu_s for r in group if r.sut_cpu_s is not None]
        sut_total = sum(sut) if len(sut) == len(group) else None
        rows.append(
            Row(
                scenario,
                level,
                target,
                with_cpu(summary, sut_total, sum(r.sim_cpu_s for r in group)),
            )
        )
    return rows


def find(rows: Sequence[Row], scenario: str, level: int, target: str) -> Summary | None:
    """The pooled summary of one cell, if it was run."""
    for row in rows:
        if (row.scenario, row.level, row.target) == (scenario, level, target):
            return row.summary
    return None


def _num(value: float, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _added(row: Row, rows: Sequence[Row], field: str) -> str:
    base = find(rows, row.scenario, row.level, DIRECT)
    if row.target == DIRECT or base is None:
        return "-"
    return f"{getattr(row.summary, field) - getattr(base, field):+.1f}"


HEADER = (
    "| scenario | conc. | target | requests | errors | TTFT p50 | TTFT p99 | added p50 | "
    "added p99 | ITL p50 | ITL p99 | E2E p50 | E2E p99 | req/s | CPU s/1k req |\n"
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def table(rows: Sequence[Row]) -> str:
    """The results table in Markdown (times in ms; CPU of the system under test)."""
    lines = [HEADER]
    for row in rows:
        s = row.summary
        lines.append(
            f"| {row.scenario} | {row.level} | {row.target} | {s.requests} | {s.errors} | "
            f"{_num(s.ttft_p50)} | {_num(s.ttft_p99)} | {_added(row, rows, 'ttft_p50')} | "
            f"{_added(row, rows, 'ttft_p99')} | {_num(s.itl_p50)} | {_num(s.itl_p99)} | "
            f"{_num(s.e2e_p50)} | {_num(s.e2e_p99)} | {_num(s.throughput_rps, 0)} | "
            f"{_num(s.cpu_per_1k, 2)} |"
        )
    return "\n".join(lines)


def bars_table(bars: Sequence[Bar]) -> str:
    """The quality bars, measured value and verdict, in Markdown."""
    lines = ["| bar | target | measured | met |", "|---|---|---|---|"]
    lines += [
        f"| {b.name} | {b.target} | {b.measured} | {'yes' if b.met else '**no**'} |" for b in bars
    ]
    return "\n".join(lines)


def conditions_list(conditions: Mapping[str, object]) -> str:
    """The run's conditions as a Markdown bullet list."""
    return "\n".join(f"- **{key}**: {value}" for key, value in conditions.items())


def markdown(
    rows: Sequence[Row], bars: Sequence[Bar], conditions: Mapping[str, object], plot: str
) -> str:
    """The section spliced between the markers of docs/benchmarks.md."""
    return "\n\n".join(
        [
            START,
            "### Conditions",
            conditions_list(conditions),
            "### Quality bars",
            bars_table(bars),
            "### Results (times in ms)",
            table(rows),
            f"![benchmark plot]({plot})",
            END,
        ]
    )


def splice(document: str, section: str) -> str:
    """Replace the text between the markers (inclusive) or append the section."""
    if START in document and END in document:
        head, rest = document.split(START, 1)
        tail = rest.split(END, 1)[1]
        return f"{head}{section}{tail}"
    return f"{document.rstrip()}\n\n{section}\n"


def write_json(path: Path, records: Sequence[RunRecord], rows: Sequence[Row],
               bars: Sequence[Bar], conditions: Mapping[str, object]) -> None:  # fmt: skip
    """All results: conditions, every run, the pooled rows and the bars."""
    payload = {
        "conditions": dict(conditions),
        "bars": [b.as_dict() for b in bars],
        "pooled": [
            {"scenario": r.scenario, "level": r.level, "target": r.target, **r.summary.as_dict()}
            for r in rows
        ],
        "runs": [record.as_dict() for record in records],
    }
    path.write_text(json.dumps(payload, indent=2, default=str))
