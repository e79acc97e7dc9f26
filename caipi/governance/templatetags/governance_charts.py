"""``{% bar_chart rows "title" %}`` and ``{% column_chart rows "title" %}`` over usage rows."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString

from caipi.governance import charts

register = template.Library()


def _pairs(rows: list[dict[str, Any]], value: str) -> list[tuple[str, float]]:
    return [(str(row["label"]), float(row[value])) for row in rows]


@register.simple_tag
def bar_chart(rows: list[dict[str, Any]], title: str, value: str = "tokens") -> SafeString:
    return charts.bar_chart(_pairs(rows, value), title=title, unit=value)


@register.simple_tag
def column_chart(rows: list[dict[str, Any]], title: str, value: str = "tokens") -> SafeString:
    return charts.column_chart(_pairs(rows, value), title=title, unit=value)
