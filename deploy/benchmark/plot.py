"""The benchmark plot (matplotlib, Agg backend, PNG): four panels from the pooled rows."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deploy.benchmark.report import Row
from deploy.benchmark.stats import Summary


def _series(
    rows: Sequence[Row], scenario: str, target: str, field: str
) -> tuple[list[int], list[float]]:
    points = sorted((r.level, getattr(r.summary, field)) for r in rows
                    if r.scenario == scenario and r.target == target)  # fmt: skip
    return [p[0] for p in points], [p[1] for p in points]


def _targets(rows: Sequence[Row]) -> list[str]:
    return list(dict.fromkeys(r.target for r in rows))


def _concurrency_panel(ax, rows: Sequence[Row], field: str, title: str) -> None:
    for target in _targets(rows):
        for suffix, style in (("p50", "-o"), ("p99", "--x")):
            if field == "itl" and suffix == "p99":
                continue
            xs, ys = _series(rows, "concurrency", target, f"{field}_{suffix}")
            if xs:
                ax.plot(xs, ys, style, label=f"{target} {suffix}")
    ax.set_xscale("log")
    if field == "ttft":
        ax.set_yscale("log")  # LiteLLM is orders of magnitude above the rest
    ax.set_xlabel("concurrent streams")
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.legend(fontsize=7)


def _bar_panel(ax, rows: Sequence[Row], scenario: str, fields: Sequence[str], title: str) -> None:
    chosen = [r for r in rows if r.scenario == scenario]
    width = 0.8 / max(1, len(fields))
    for index, field in enumerate(fields):
        xs = [i + index * width for i in range(len(chosen))]
        ax.bar(xs, [getattr(r.summary, field) for r in chosen], width, label=field)
    ax.set_xticks([i + width * (len(fields) - 1) / 2 for i in range(len(chosen))])
    ax.set_xticklabels([r.target for r in chosen], rotation=15, fontsize=7)
    ax.set_title(title)
    ax.legend(fontsize=7)


def plot(rows: Sequence[Row], path: Path) -> Path:
    """Draw TTFT and inter-chunk latency vs concurrency, throughput and uneven TTFT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    _concurrency_panel(axes[0][0], rows, "ttft", "TTFT vs concurrency (ms, log)")
    _concurrency_panel(axes[0][1], rows, "itl", "inter-chunk latency p50 (ms)")
    _bar_panel(axes[1][0], rows, "throughput", ["throughput_rps"], "non-streaming req/s")
    _bar_panel(axes[1][1], rows, "uneven", ["ttft_p50", "ttft_p99"],
               "uneven endpoints: TTFT (ms)")  # fmt: skip
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def rows_from_json(path: Path) -> list[Row]:
    """The pooled rows of a ``results.json`` (to redraw a plot without rerunning)."""
    fields = {f for f in Summary.__dataclass_fields__}
    rows = []
    for item in json.loads(path.read_text())["pooled"]:
        values: dict[str, Any] = {
            k: math.nan if v is None else v for k, v in item.items() if k in fields
        }
        rows.append(Row(item["scenario"], item["level"], item["target"], Summary(**values)))
    return rows


if __name__ == "__main__":  # python -m deploy.benchmark.plot RESULTS.json OUT.png
    plot(rows_from_json(Path(sys.argv[1])), Path(sys.argv[2]))
