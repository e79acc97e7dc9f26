"""Charts as inline SVG built on the server: no JavaScript, no CDN, readable without CSS.

Each bar is a ``<rect class="bar">`` with ``data-label`` and ``data-value`` and a
``<title>`` tooltip, so browsers show values on hover and tests can read the data back.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

WIDTH = 640
BAR_HEIGHT = 22
LABEL_WIDTH = 170
COLUMN_AREA = 180
MAX_TICKS = 6


def _scale(values: Sequence[float]) -> float:
    return max([*values, 1])


def _empty(title: str) -> SafeString:
    message = _("%(chart)s: no usage yet.") % {"chart": title}
    return format_html('<p class="muted chart-empty">{}</p>', message)


def bar_chart(rows: Sequence[tuple[str, float]], *, title: str, unit: str = "") -> SafeString:
    """Horizontal bars, one per ``(label, value)``, longest first as given."""
    if not rows:
        return format_html(
            '<p class="muted chart-empty">{}</p>', _("%(chart)s: no usage yet.") % {"chart": title}
        )
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
    """Vertical columns over time (one per day), the axis labelled at evenly spaced days."""
    if not rows:
        return format_html(
            '<p class="muted chart-empty">{}</p>', _("%(chart)s: no usage yet.") % {"chart": title}
        )
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
    ticks = format_html_join(
        "",
        '<text class="tick" x="{}" y="{}" text-anchor="{}">{}</text>',
        (
            (round(10 + index * step + step / 2, 1), base + 18, anchor, rows[index][0])
            for index, anchor in _ticks(len(rows))
        ),
    )
    return format_html(
        '<svg class="chart column-chart" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="chart-title">{} '
        '({} {})</text>{}<line x1="10" x2="{}" y1="{}" y2="{}" class="axis"/>{}</svg>',
        title,
        WIDTH,
        base + 24,
        WIDTH,
        base + 24,
        title,
        _("max"),
        f"{top:,.0f}",
        columns,
        WIDTH - 10,
        base,
        base,
        ticks,
    )


def _ticks(count: int, most: int = MAX_TICKS) -> list[tuple[int, str]]:
    """Which columns get a label under the axis: the first, the last and evenly spaced ones
    between (at most ``most``), each once; the text anchor keeps the end labels inside."""
    if count <= 0:
        return []
    if count == 1:
        return [(0, "middle")]
    gap = max(1, -(-(count - 1) // (most - 1)))
    chosen = list(range(0, count - 1, gap))
    if count - 1 - chosen[-1] < gap / 2 and len(chosen) > 1:
        chosen.pop()  # too close to the last label to be read
    chosen.append(count - 1)
    return [
        (index, "start" if index == 0 else "end" if index == count - 1 else "middle")
        for index in chosen
    ]
