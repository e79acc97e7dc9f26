"""The scaling chart of the operations page: inline SVG built on the server (no JavaScript,
no CDN), like the usage charts. Each decision is a ``<circle class="decision">`` with
``data-desired`` and a ``<title>`` giving its time and reason, so browsers show the reason
on hover and tests can read the data back."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
HEIGHT = 160
LEFT = 30
TOP = 24
BOTTOM = 24


def scaling_chart(
    decisions: Sequence[tuple[datetime, int, int, str]], *, title: str, now: datetime
) -> SafeString:
    """A step line of the desired instance count over time, one point per decision
    ``(at, current, desired, reason)`` in time order, held flat until ``now``."""
    if not decisions:
        return format_html('<p class="muted chart-empty">{}: no scaling decision yet.</p>', title)
    start = decisions[0][0].timestamp()
    span = max(now.timestamp() - start, 1.0)
    top = max(max(d[2] for d in decisions), max(d[1] for d in decisions), 1)
    plot_w, plot_h = WIDTH - LEFT - 10, HEIGHT - TOP - BOTTOM

    def x(at: datetime) -> float:
        return round(LEFT + (at.timestamp() - start) / span * plot_w, 1)

    def y(count: int) -> float:
        return round(TOP + plot_h - count / top * plot_h, 1)

    points = [(x(decisions[0][0]), y(decisions[0][1]))]
    for at, _current, desired, _reason in decisions:
        points += [(x(at), points[-1][1]), (x(at), y(desired))]
    points.append((LEFT + plot_w, points[-1][1]))
    path = " ".join(f"{px},{py}" for px, py in points)
    dots = format_html_join(
        "",
        '<circle class="decision" cx="{}" cy="{}" r="4" data-desired="{}" data-reason="{}">'
        "<title>{}: {} → {} ({})</title></circle>",
        (
            (x(at), y(desired), desired, reason, at.strftime("%H:%M:%S"), cur, desired, reason)
            for at, cur, desired, reason in decisions
        ),
    )
    return format_html(
        '<svg class="chart scaling-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" '
        'width="{}" height="{}" xmlns="http://www.w3.org/2000/svg">'
        '<text x="0" y="14" class="chart-title">{}</text>'
        '<line class="axis" x1="{}" y1="{}" x2="{}" y2="{}"/>'
        '<text x="{}" y="{}" text-anchor="end">{}</text><text x="{}" y="{}" text-anchor="end">0'
        '</text><polyline class="line" fill="none" points="{}"/>{}'
        '<text x="{}" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">now</text></svg>',
        title,
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        title,
        LEFT,
        TOP + plot_h,
        LEFT + plot_w,
        TOP + plot_h,
        LEFT - 6,
        TOP + 4,
        top,
        LEFT - 6,
        TOP + plot_h,
        path,
        dots,
        LEFT,
        HEIGHT - 6,
        decisions[0][0].strftime("%H:%M"),
        LEFT + plot_w,
        HEIGHT - 6,
    )
