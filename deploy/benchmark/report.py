"""Results as a Markdown table (spliced into docs/benchmarks.md), a JSON file and a plot.

The results table pools the repeats of a step per (scenario, level, target): percentiles
over all their samples, throughput over their summed wall time, CPU summed. "Added"
columns compare a target with direct access in the same step (difference of the
percentiles). The bars are judged per repeat (``by_repeat``), and the bars table shows
each bar's value in every repeat.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.benchmark.bars import Bar, Lookup
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
        summary = with_cpu(summary, sut_total, sum(r.sim_cpu_s for r in group))
        died = [r.summary.engine_died for r in group if r.summary.engine_died is not None]
        summary.engine_died = all(died) if died else None
        rows.append(Row(scenario, level, target, summary))
    return rows


def by_repeat(records: Sequence[RunRecord]) -> list[list[Row]]:
    """The rows of each repeat on its own (index = repeat number)."""
    count = 1 + max((record.repeat for record in records), default=-1)
    return [pool([r for r in records if r.repeat == repeat]) for repeat in range(count)]


def lookups(records: Sequence[RunRecord]) -> list[Lookup]:
    """One cell finder per repeat, for ``bars.evaluate``."""
    return [_finder(rows) for rows in by_repeat(records)]


def _finder(rows: Sequence[Row]) -> Lookup:
    return lambda scenario, level, target: find(rows, scenario, level, target)


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
    """The quality bars in Markdown: the value in each repeat (bold where that repeat
    missed the bar) and "yes" only when every repeat met it."""
    count = max((len(b.checks) for b in bars), default=1)
    heads = " | ".join(f"repeat {n + 1}" for n in range(count))
    lines = [f"| bar | target | {heads} | met in every repeat |",
             "|---|---|" + "---|" * count + "---|"]  # fmt: skip
    for bar in bars:
        cells = [c.measured if c.met else f"**{c.measured}**" for c in bar.checks]
        cells += ["-"] * (count - len(cells))
        verdict = "yes" if bar.met else "**no**"
        lines.append(f"| {bar.name} | {bar.target} | {' | '.join(cells)} | {verdict} |")
    return "\n".join(lines)


def conditions_list(conditions: Mapping[str, object]) -> str:
    """The run's conditions as a Markdown bullet list."""
    return "\n".join(f"- **{key}**: {value}" for key, value in conditions.items())


def markdown(
    rows: Sequence[Row], bars: Sequence[Bar], conditions: Mapping[str, object], plot: str | None
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
            *([f"![benchmark plot]({plot})"] if plot else []),
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
