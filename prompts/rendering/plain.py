"""Logic-less templates: ``{{ dotted.name }}`` placeholders and literal text, nothing else.

The default engine. A template is split once into literal parts and variable references
(``compile_plain``, cached); rendering joins the literals with the values' text. Values are
never parsed again, so a course title or a student's answer that contains ``{{ ... }}`` is
printed as it is, not evaluated. Anything that looks like template syntax but is not a
plain placeholder (``{% ... %}``, ``{{ x|filter }}``, ``{{ ''.__class__ }}``) is refused
at authoring with its line and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from django.utils.translation import gettext_lazy as _

from prompts.variables import Problem

# A placeholder: a dotted name of small identifiers, optional spaces inside the braces.
PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*)\s*\}\}")
# Anything that opens template syntax: checked against PLACEHOLDER at the same place.
OPENER = re.compile(r"\{\{|\{%|\{#")


@dataclass(frozen=True)
class Ref:
    """A variable reference in a compiled template, with where it stands in the source."""

    name: str
    line: int
    column: int


@dataclass(frozen=True)
class PlainTemplate:
    """A compiled logic-less template: literal strings and ``Ref``s in order."""

    parts: tuple[str | Ref, ...]

    @property
    def refs(self) -> tuple[Ref, ...]:
        return tuple(part for part in self.parts if isinstance(part, Ref))

    def render(self, values: Mapping[str, str]) -> str:
        """Join the parts; a name missing from ``values`` renders as the empty string."""
        get = values.get
        return "".join(part if isinstance(part, str) else get(part.name, "") for part in self.parts)


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``source``."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1


@lru_cache(maxsize=1024)
def compile_plain(source: str) -> tuple[PlainTemplate, tuple[Problem, ...]]:
    """Split ``source`` into parts; returns the template and the syntax problems found
    (each with its line and column). Cached: a version's prompts compile once."""
    parts: list[str | Ref] = []
    problems: list[Problem] = []
    at = 0
    for opener in OPENER.finditer(source):
        start = opener.start()
        if start < at:
            continue  # inside a placeholder already taken
        line, column = position(source, start)
        match = PLACEHOLDER.match(source, start)
        if match is None:
            problems.append(Problem("", _syntax_message(source, start), line, column))
            continue
        if start > at:
            parts.append(source[at:start])
        parts.append(Ref(match.group(1), line, column))
        at = match.end()
    if at < len(source):
        parts.append(source[at:])
    return PlainTemplate(tuple(parts)), tuple(problems)


def _syntax_message(source: str, start: int) -> str:
    snippet = source[start : start + 40].split("\n", 1)[0]
    if source.startswith("{{", start):
        return str(
            _(
                "“%(snippet)s” is not a plain variable. Simple templates allow only "
                "{{ name }} with a name from the list; switch to logic templates for "
                "filters and conditions."
            )
            % {"snippet": snippet}
        )
    return str(
        _("“%(snippet)s”: conditions and loops need a logic template.") % {"snippet": snippet}
    )
