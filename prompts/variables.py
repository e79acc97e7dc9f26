"""The variables a template may use: a declared, typed schema, never free text.

Two families of names:

* **Context variables** are filled by CAIPI from the course, the user, the launch, the clock
  and lecture-note retrieval (``BUILTINS``, plus ``launch.custom.<key>`` for the LMS's
  custom parameters). A lecturer cannot declare them and a student cannot set them.
* **Student inputs** (``input.<name>``) are declared per template version with a kind
  (short text with a length limit, long text, choice, number with a range, yes/no), a
  label, whether they are required, and a default. The run form is generated from them;
  ``inputs_clean`` checks what a student sent against them.

Declarations are plain JSON (stored on the version); ``schema_parse`` turns them into
``InputSpec`` objects or a list of ``Problem``s naming the field at fault.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import ApplicationError

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CUSTOM_PREFIX = "launch.custom."
INPUT_PREFIX = "input."
MAX_INPUTS = 20
MAX_SHORT_TEXT = 500
MAX_LONG_TEXT = 20_000
MAX_CHOICES = 50


class Source(StrEnum):
    """Where a context variable's value comes from."""

    COURSE = "course"
    USER = "user"
    LAUNCH = "launch"
    DATETIME = "now"
    PASSAGES = "passages"
    INPUT = "input"


@dataclass(frozen=True)
class Builtin:
    """A context variable: its dotted name, whether it is a list, and what it holds."""

    name: str
    help: Any
    is_list: bool = False

    @property
    def source(self) -> Source:
        return Source(self.name.split(".", 1)[0])


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("course.title", _("The course's full title.")),
        Builtin("course.label", _("The course's short name, e.g. ML101.")),
        Builtin("course.start", _("The course's start date, when the LMS sends it.")),
        Builtin("course.end", _("The course's end date, when the LMS sends it.")),
        Builtin("course.sections", _("The names of the course's sections."), is_list=True),
        Builtin("course.activities", _("The names of the course's activities."), is_list=True),
        Builtin("user.given_name", _("The student's given name.")),
        Builtin("user.role", _("The user's role in the course.")),
        Builtin("user.locale", _("The user's language, e.g. de or en.")),
        Builtin("launch.resource_title", _("The title of the LMS activity that opened CAIPI.")),
        Builtin("now.date", _("Today's date.")),
        Builtin("now.time", _("The time now.")),
        Builtin("now.weekday", _("Today's weekday.")),
        Builtin("passages", _("Lecture-note passages retrieved for the question."), is_list=True),
    )
}


class InputKind(StrEnum):
    """The kinds of student input a template can declare."""

    SHORT_TEXT = "short_text"
    LONG_TEXT = "long_text"
    CHOICE = "choice"
    NUMBER = "number"
    YES_NO = "yes_no"


TEXT_KINDS = (InputKind.SHORT_TEXT, InputKind.LONG_TEXT)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a template or an input, and where: ``field`` names the part
    (``user_prompt``, ``variables[2].default``, ``inputs.topic``); ``line``/``column``
    (1-based) point into a prompt text when the problem is there."""

    field: str
    message: str | Promise  # a lazy translation until shown
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "message": str(self.message),
            "line": self.line,
            "column": self.column,
        }


class TemplateInvalid(ApplicationError):
    """A template (or what a student sent to it) was refused; ``problems`` lists why."""

    code = "template_invalid"

    def __init__(self, message: str, problems: list[Problem]) -> None:
        super().__init__(message, extra={"problems": [p.as_dict() for p in problems]})
        self.problems = problems


@dataclass(frozen=True)
class InputSpec:
    """One declared student input (see the module docstring)."""

    name: str
    kind: InputKind
    label: str = ""
    help: str = ""
    required: bool = True
    default: Any = None
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    integer: bool = False

    @property
    def variable(self) -> str:
        return INPUT_PREFIX + self.name

    def as_dict(self) -> dict[str, Any]:
        """The JSON declaration (what ``schema_parse`` reads back)."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": str(self.kind),
            "label": self.label,
            "help": self.help,
            "required": self.required,
            "default": self.default,
        }
        if self.kind in TEXT_KINDS:
            data["max_length"] = self.max_length
        if self.kind == InputKind.CHOICE:
            data["choices"] = list(self.choices)
        if self.kind == InputKind.NUMBER:
            data.update(min=self.minimum, max=self.maximum, integer=self.integer)
        return data


@dataclass
class _Parser:
    problems: list[Problem] = field(default_factory=list)

    def fail(self, where: str, message: str | Promise) -> None:
        self.problems.append(Problem(where, message))


def _is_number(value: Any) -> bool:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    return ok and math.isfinite(value)


def _text_limit(kind: InputKind, raw: Any, where: str, parser: _Parser) -> int:
    ceiling = MAX_SHORT_TEXT if kind == InputKind.SHORT_TEXT else MAX_LONG_TEXT
    if raw is None:
        return 200 if kind == InputKind.SHORT_TEXT else 4000
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= ceiling:
        parser.fail(where, _("Give a length limit from 1 to %(max)s.") % {"max": ceiling})
        return ceiling
    return raw


def _one_spec(raw: Any, where: str, parser: _Parser) -> InputSpec | None:
    if not isinstance(raw, dict):
        parser.fail(where, _("Each variable must be an object."))
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        parser.fail(f"{where}.name", _("Use a name of small letters, digits and _, e.g. topic."))
        return None
    try:
        kind = InputKind(str(raw.get("kind")))
    except ValueError:
        kinds = ", ".join(k.value for k in InputKind)
        parser.fail(f"{where}.kind", _("The kind must be one of: %(kinds)s.") % {"kinds": kinds})
        return None
    spec = InputSpec(
        name=name,
        kind=kind,
        label=str(raw.get("label") or "")[:200],
        help=str(raw.get("help") or "")[:500],
        required=bool(raw.get("required", True)),
    )
    return _with_kind_fields(spec, raw, where, parser)


def _with_kind_fields(spec: InputSpec, raw: dict, where: str, parser: _Parser) -> InputSpec:
    from dataclasses import replace

    kind = spec.kind
    if kind in TEXT_KINDS:
        spec = replace(spec, max_length=_text_limit(kind, raw.get("max_length"), where, parser))
    elif kind == InputKind.CHOICE:
        raw_choices = raw.get("choices")
        choices: list[str] = []
        if (
            isinstance(raw_choices, list)
            and 1 <= len(raw_choices) <= MAX_CHOICES
            and all(isinstance(c, str) and 0 < len(c) <= 200 for c in raw_choices)
        ):
            choices = [str(c) for c in raw_choices]
        else:
            parser.fail(
                f"{where}.choices",
                _("List 1 to %(max)s choices, each a short text.") % {"max": MAX_CHOICES},
            )
        spec = replace(spec, choices=tuple(dict.fromkeys(choices)))
    elif kind == InputKind.NUMBER:
        low, high = raw.get("min"), raw.get("max")
        for bound, value in (("min", low), ("max", high)):
            if value is not None and not _is_number(value):
                parser.fail(f"{where}.{bound}", _("Give a number."))
        if _is_number(low) and _is_number(high) and float(low) > float(high):  # type: ignore[arg-type]
            parser.fail(f"{where}.max", _("The largest value is smaller than the smallest."))
        spec = replace(
            spec,
            minimum=float(low) if _is_number(low) else None,  # type: ignore[arg-type]
            maximum=float(high) if _is_number(high) else None,  # type: ignore[arg-type]
            integer=bool(raw.get("integer", False)),
        )
    default = raw.get("default")
    if default is not None and default != "":
        problem = input_problem(spec, default)
        if problem:
            parser.fail(f"{where}.default", problem)
        else:
            spec = replace(spec, default=input_value(spec, default))
    return spec


def schema_parse(raw: Any) -> tuple[list[InputSpec], list[Problem]]:
    """Read a version's input declarations; returns the specs and any problems found.

    Refuses: not a list, more than MAX_INPUTS, bad or duplicate names, unknown kinds,
    limits out of bounds, defaults that would not pass as input themselves.
    """
    parser = _Parser()
    if raw in (None, ""):
        return [], []
    if not isinstance(raw, list):
        return [], [Problem("variables", _("The variables must be a list."))]
    if len(raw) > MAX_INPUTS:
        parser.fail("variables", _("At most %(max)s student inputs.") % {"max": MAX_INPUTS})
    specs: list[InputSpec] = []
    for index, item in enumerate(raw[:MAX_INPUTS]):
        spec = _one_spec(item, f"variables[{index}]", parser)
        if spec is None:
            continue
        if any(s.name == spec.name for s in specs):
            parser.fail(f"variables[{index}].name", _("This name is used twice."))
            continue
        specs.append(spec)
    return specs, parser.problems


def input_problem(spec: InputSpec, value: Any) -> Any:
    """Why ``value`` is not acceptable for ``spec`` (a message), or None when it is."""
    kind = spec.kind
    if kind in TEXT_KINDS:
        if not isinstance(value, str):
            return _("Enter text.")
        if spec.max_length is not None and len(value) > spec.max_length:
            return _("At most %(max)s characters (this has %(count)s).") % {
                "max": spec.max_length,
                "count": len(value),
            }
        return None
    if kind == InputKind.CHOICE:
        return None if value in spec.choices else _("Pick one of the offered choices.")
    if kind == InputKind.YES_NO:
        return None if isinstance(value, bool) else _("Answer yes or no.")
    number = _as_number(value)
    if number is None or (spec.integer and number != int(number)):
        return _("Enter a whole number.") if spec.integer else _("Enter a number.")
    if spec.minimum is not None and number < spec.minimum:
        return _("At least %(min)s.") % {"min": _show(spec.minimum)}
    if spec.maximum is not None and number > spec.maximum:
        return _("At most %(max)s.") % {"max": _show(spec.maximum)}
    return None


def _show(number: float) -> str:
    return str(int(number)) if number == int(number) else str(number)


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        return float(value)
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = float(value.strip())
        except ValueError:
            return None
        return parsed if math.isfinite(parsed) else None
    return None


def input_value(spec: InputSpec, value: Any) -> Any:
    """``value`` in its canonical type (call after ``input_problem`` returned None)."""
    if spec.kind == InputKind.NUMBER:
        number = _as_number(value)
        assert number is not None
        return int(number) if spec.integer else number
    return value


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def inputs_clean(specs: list[InputSpec], raw: Any) -> dict[str, Any]:
    """What a student sent, checked against the declarations: ``{name: value}``.

    Missing optional inputs take their default; unknown names, missing required inputs,
    wrong types, texts over their limit, numbers out of range and unknown choices are
    refused with ``TemplateInvalid`` naming every input at fault.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise TemplateInvalid(str(_("The inputs must be an object.")), [])
    problems: list[Problem] = []
    known = {spec.name for spec in specs}
    for name in raw:
        if name not in known:
            problems.append(Problem(f"inputs.{name}"[:80], _("This template has no such input.")))
    values: dict[str, Any] = {}
    for spec in specs:
        value = raw.get(spec.name)
        if _is_empty(value):
            if spec.required and _is_empty(spec.default):
                problems.append(Problem(f"inputs.{spec.name}", _("This input is required.")))
            values[spec.name] = spec.default if spec.default is not None else _empty(spec)
            continue
        problem = input_problem(spec, value)
        if problem:
            problems.append(Problem(f"inputs.{spec.name}", problem))
        else:
            values[spec.name] = input_value(spec, value)
    if problems:
        raise TemplateInvalid(str(_("Some inputs need another look.")), problems)
    return values


def _empty(spec: InputSpec) -> Any:
    return False if spec.kind == InputKind.YES_NO else ""


def known_variables(specs: list[InputSpec]) -> set[str]:
    """Every dotted name a template with these inputs may use (``launch.custom.*`` aside)."""
    return set(BUILTINS) | {spec.variable for spec in specs}


def is_known(name: str, specs: list[InputSpec]) -> bool:
    """True when ``name`` is a context variable, a declared input or a custom parameter."""
    if name.startswith(CUSTOM_PREFIX):
        return bool(NAME_RE.match(name[len(CUSTOM_PREFIX) :]))
    return name in BUILTINS or any(spec.variable == name for spec in specs)


def suggestion(name: str, specs: list[InputSpec]) -> str:
    """ " Did you mean “course.title”?" for a misspelt name, or "" when nothing is close."""
    close = difflib.get_close_matches(name, sorted(known_variables(specs)), n=1, cutoff=0.6)
    return str(_(" Did you mean “%(name)s”?") % {"name": close[0]}) if close else ""
