"""Charts as inline SVG built on the server: no JavaScript, no CDN, readable without CSS.

Each bar is a ``<rect class="bar">`` with ``data-label`` and ``data-value`` and a
``<title>`` tooltip, so browsers show values on hover and tests can read the data back.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 170
COLUMN_AREA = 180


def _scale(values: Sequence[float]) -> float:
    return max([*values, 1])


def bar_chart(rows: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> SafeString:
    """Horizontal bars, one per ``(label, value)``, longest first as given."""
    if not rows:
        return format_html('<p class="muted chart-empty">{}: no usage yet.</p>', title)
    top = _scale([value for _, value in rows])
    span = WIDTH - LABEL_WIDTH - 90
    height = len(rows) * (BAR_HEIGHT + 6) + 30
    bars = format_html_join(
        "",
        '<g transform="translate(0,{})"><text x="{}" y="15" text-anchor="end">{}</text>'
        '<rect class="bar" x="{}" y="0" width="{}" height="{}" data-label="{}" data-value="{}">'
        "<title>{}: {} {}</title></rect>"
        '<text x="{}" y="15" class="value">{}</text></g>',
        (
            (
                30 + index * (BAR_HEIGHT + 6),
                LABEL_WIDTH - 8,
                label[:28],
                LABEL_WIDTH,
                max(1, round(value / top * span)),
                BAR_HEIGHT,
                label,
                value,
                label,
                f"{value:,.0f}",
                unit,
                LABEL_WIDTH + max(1, round(value / top * span)) + 6,
                f"{value:,.0f}",
            )
            for index, (label, value) in enumerate(rows)
        ),
    )
    return format_html(
        '<svg class="chart bar-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="chart-title">{}'
        "</text>{}</svg>",
        title,
        WIDTH,
        height,
        WIDTH,
        height,
        title,
        bars,
    )


def column_chart(rows: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> SafeString:
    """Vertical columns over time (one per day), labelled at the first and last column."""
    if not rows:
        return format_html('<p class="muted chart-empty">{}: no usage yet.</p>', title)
    top = _scale([value for _, value in rows])
    step = min((WIDTH - 20) / len(rows), 48)
    base = 30 + COLUMN_AREA
    columns = format_html_join(
        "",
        '<rect class="bar" x="{}" y="{}" width="{}" height="{}" data-label="{}" data-value="{}">'
        "<title>{}: {} {}</title></rect>",
        (
            (
                round(10 + index * step, 1),
                base - max(1, round(value / top * COLUMN_AREA)),
                round(max(step - 3, 1), 1),
                max(1, round(value / top * COLUMN_AREA)),
                label,
                value,
                label,
                f"{value:,.0f}",
                unit,
            )
            for index, (label, value) in enumerate(rows)
        ),
    )
    first, last = rows[0][0], rows[-1][0]
    return format_html(
        '<svg class="chart column-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="chart-title">{} '
        '(max {})</text>{}<line x1="10" x2="{}" y1="{}" y2="{}" class="axis"/>'
        '<text x="10" y="{}">{}</text><text x="{}" y="{}" text-anchor="end">{}</text></svg>',
        title,
        WIDTH,
        base + 24,
        WIDTH,
        base + 24,
        title,
        f"{top:,.0f}",
        columns,
        WIDTH - 10,
        base,
        base,
        base + 18,
        first,
        WIDTH - 10,
        base + 18,
        last,
    )
