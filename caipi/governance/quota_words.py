"""Quota limits in words for people: "9 of 10 requests left this minute", not
"learner requests per minute". Whole sentences per metric and window, so that every
language can order its words (German: "noch 9 von 10 Anfragen in dieser Minute")."""

from __future__ import annotations

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

TITLES = {
    ("requests", "minute"): gettext_lazy("Requests this minute"),
    ("requests", "day"): gettext_lazy("Requests today"),
    ("requests", "month"): gettext_lazy("Requests this month"),
    ("tokens", "minute"): gettext_lazy("Tokens this minute"),
    ("tokens", "day"): gettext_lazy("Tokens today"),
    ("tokens", "month"): gettext_lazy("Tokens this month"),
    ("input_tokens", "minute"): gettext_lazy("Question tokens this minute"),
    ("input_tokens", "day"): gettext_lazy("Question tokens today"),
    ("input_tokens", "month"): gettext_lazy("Question tokens this month"),
    ("output_tokens", "minute"): gettext_lazy("Answer tokens this minute"),
    ("output_tokens", "day"): gettext_lazy("Answer tokens today"),
    ("output_tokens", "month"): gettext_lazy("Answer tokens this month"),
}
SUMMARIES = {
    ("requests", "minute"): gettext_lazy("%(left)s of %(size)s requests left this minute"),
    ("requests", "day"): gettext_lazy("%(left)s of %(size)s requests left today"),
    ("requests", "month"): gettext_lazy("%(left)s of %(size)s requests left this month"),
    ("tokens", "minute"): gettext_lazy("%(left)s of %(size)s tokens left this minute"),
    ("tokens", "day"): gettext_lazy("%(left)s of %(size)s tokens left today"),
    ("tokens", "month"): gettext_lazy("%(left)s of %(size)s tokens left this month"),
    ("input_tokens", "minute"): gettext_lazy(
        "%(left)s of %(size)s question tokens left this minute"
    ),
    ("input_tokens", "day"): gettext_lazy("%(left)s of %(size)s question tokens left today"),
    ("input_tokens", "month"): gettext_lazy("%(left)s of %(size)s question tokens left this month"),
    ("output_tokens", "minute"): gettext_lazy(
        "%(left)s of %(size)s answer tokens left this minute"
    ),
    ("output_tokens", "day"): gettext_lazy("%(left)s of %(size)s answer tokens left today"),
    ("output_tokens", "month"): gettext_lazy("%(left)s of %(size)s answer tokens left this month"),
}


def _number(value: int) -> str:
    return number_format(value, force_grouping=True)


def limit_title(*, metric: str, window: str) -> str:
    """ "Tokens today"; the metric and window's own words for an unknown pair."""
    return str(TITLES.get((metric, window), f"{metric} / {window}"))


def limit_whose(*, scope: str, model: str = "") -> str:
    """Who shares the limit, when it is not the person alone ("" for their own limits)."""
    if scope == "course":
        return _("shared by everyone in the course")
    if scope == "model" and model:
        return _("on the model %(model)s") % {"model": model}
    if scope == "key":
        return _("for this API key")
    return ""


def limit_summary(*, metric: str, window: str, remaining: int, size: int) -> str:
    """ "9 of 10 requests left this minute" in the active language."""
    sentence = SUMMARIES.get((metric, window))
    values = {"left": _number(remaining), "size": _number(size)}
    if sentence is None:
        return f"{values['left']} / {values['size']} {metric} ({window})"
    return str(sentence) % values
