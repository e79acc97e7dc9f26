"""The data a template is rendered with, and how each value is written into the prompt.

Course data and student input are *data*, never template source: they are inserted as
text after the template was compiled. Free text a student typed and retrieved lecture-note
passages are also *delimited*, so the model can tell them from the lecturer's
instructions::

    <student_input name="question">
    What is overfitting?
    </student_input>

    <passage n="1" source="Week 3 notes, p. 4">
    ...
    </passage>

A value cannot close its own delimiter: a ``<student_input``, ``</student_input``,
``<passage`` or ``</passage`` inside it is defused (its ``<`` becomes U+2039, a single
angle quotation mark). Lists (course sections, activities) are written one ``- item`` per
line; yes/no as ``yes``/``no``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prompts.variables import TEXT_KINDS, InputSpec

MAX_ITEMS = 200
MAX_ITEM_CHARS = 2000
_DELIMITER = re.compile(r"<(/?)(student_input|passage)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Passage:
    """A retrieved lecture-note passage and where it comes from (for citations)."""

    text: str
    source: str = ""
    # What the run page shows for this passage when it is cited (document, page, link,
    # quote), as the provider that retrieved it describes it; never part of the prompt.
    citation: dict[str, Any] | None = field(default=None, compare=False, hash=False)


@dataclass
class RunContext:
    """Everything a run knows: filled by the caller from the course, user, launch, clock
    and retrieval; ``inputs`` already checked by ``variables.inputs_clean``."""

    course: dict[str, Any] = field(default_factory=dict)
    user: dict[str, Any] = field(default_factory=dict)
    launch: dict[str, Any] = field(default_factory=dict)
    now: datetime | None = None
    passages: list[Passage] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)


def defuse(text: str) -> str:
    """``text`` with anything that would open or close a CAIPI delimiter made harmless."""
    if "<" not in text:
        return text
    return _DELIMITER.sub(lambda m: "\u2039" + m.group(1) + m.group(2), text)


def delimit_input(name: str, text: str) -> str:
    """A student's free text, wrapped as data (empty text stays empty)."""
    if not text:
        return ""
    return f'<student_input name="{name}">\n{defuse(text)}\n</student_input>'


def delimit_passages(passages: list[Passage]) -> list[str]:
    """Each passage wrapped as data, numbered from 1 for citations."""
    blocks = []
    for number, passage in enumerate(passages[:MAX_ITEMS], start=1):
        source = defuse(passage.source).replace('"', "'").replace("\n", " ")[:200]
        blocks.append(
            f'<passage n="{number}" source="{source}">\n{defuse(passage.text)}\n</passage>'
        )
    return blocks


def _bullets(items: Any) -> str:
    if not items:
        return ""
    lines = (str(item).replace("\n", " ")[:MAX_ITEM_CHARS] for item in list(items)[:MAX_ITEMS])
    return "\n".join(f"- {line}" for line in lines)


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _input_text(spec: InputSpec, value: Any) -> str:
    if spec.kind in TEXT_KINDS:
        return delimit_input(spec.name, str(value or ""))
    return _scalar(value)


def _clock(now: datetime | None) -> dict[str, str]:
    if now is None:
        return {"date": "", "time": "", "weekday": ""}
    return {
        "date": now.date().isoformat(),
        "time": now.strftime("%H:%M"),
        "weekday": now.strftime("%A"),
    }


def flat_values(context: RunContext, specs: list[InputSpec]) -> dict[str, str]:
    """``{dotted name: text}`` for the logic-less engine (every known name present)."""
    course, user, launch = context.course, context.user, context.launch
    values = {
        "course.title": _scalar(course.get("title")),
        "course.label": _scalar(course.get("label")),
        "course.start": _scalar(course.get("start")),
        "course.end": _scalar(course.get("end")),
        "course.sections": _bullets(course.get("sections")),
        "course.activities": _bullets(course.get("activities")),
        "user.given_name": _scalar(user.get("given_name")),
        "user.role": _scalar(user.get("role")),
        "user.locale": _scalar(user.get("locale")),
        "launch.resource_title": _scalar(launch.get("resource_title")),
        "passages": "\n\n".join(delimit_passages(context.passages)),
    }
    for name, value in _clock(context.now).items():
        values[f"now.{name}"] = value
    for key, value in (launch.get("custom") or {}).items():
        values[f"launch.custom.{key}"] = _scalar(value)[:MAX_ITEM_CHARS]
    for spec in specs:
        values[spec.variable] = _input_text(spec, context.inputs.get(spec.name))
    return values


class Joined(list[str]):
    """A list that prints as its items, one per line (``{{ course.sections }}`` in logic
    templates reads like the plain engine's output, not like a Python list)."""

    def __init__(self, items: list[str], *, bullets: bool) -> None:
        super().__init__(items)
        self.bullets = bullets

    def __str__(self) -> str:
        return _bullets(self) if self.bullets else "\n\n".join(self)


def nested_values(context: RunContext, specs: list[InputSpec]) -> dict[str, Any]:
    """The same data as nested dicts of plain values, for the sandboxed logic engine."""
    course, user, launch = context.course, context.user, context.launch
    inputs = {}
    for spec in specs:
        value = context.inputs.get(spec.name)
        inputs[spec.name] = _input_text(spec, value) if spec.kind in TEXT_KINDS else value
    sections = [str(s)[:MAX_ITEM_CHARS] for s in list(course.get("sections") or [])[:MAX_ITEMS]]
    activities = [str(a)[:MAX_ITEM_CHARS] for a in list(course.get("activities") or [])[:MAX_ITEMS]]
    return {
        "course": {
            "title": _scalar(course.get("title")),
            "label": _scalar(course.get("label")),
            "start": _scalar(course.get("start")),
            "end": _scalar(course.get("end")),
            "sections": Joined(sections, bullets=True),
            "activities": Joined(activities, bullets=True),
        },
        "user": {k: _scalar(user.get(k)) for k in ("given_name", "role", "locale")},
        "launch": {
            "resource_title": _scalar(launch.get("resource_title")),
            "custom": {k: _scalar(v) for k, v in (launch.get("custom") or {}).items()},
        },
        "now": _clock(context.now),
        "passages": Joined(delimit_passages(context.passages), bullets=False),
        "input": inputs,
    }
