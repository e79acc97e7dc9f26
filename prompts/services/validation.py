"""Checking a version's content before it is saved: prompts, inputs, model, parameters,
conversation starters and test cases. Every problem is collected, so the editor can show
them all at once, each at its place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from caipi.core.models import Course
from caipi.core.permissions import can
from prompts import registry
from prompts.checks import checks_parse
from prompts.permissions import MODEL_USE
from prompts.rendering import Engine, template_problems
from prompts.variables import InputSpec, Problem, TemplateInvalid, inputs_clean, schema_parse

PARAM_RANGES: dict[str, tuple[float, float]] = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0)}
MAX_TOKENS_LIMIT = 8192
MAX_STARTERS = 6
MAX_TESTS = 30
MAX_NOTES = 10


@dataclass(frozen=True)
class CheckedContent:
    """A version's content that passed every check, normalised, ready to store."""

    fields: dict[str, Any]
    specs: list[InputSpec]
    tests: list[dict[str, Any]]


def _params_problems(params: Any) -> list[Problem]:
    if not isinstance(params, dict):
        return [Problem("params", _("The parameters must be an object."))]
    problems = []
    for name, value in params.items():
        ok_number = isinstance(value, int | float) and not isinstance(value, bool)
        if name in PARAM_RANGES:
            low, high = PARAM_RANGES[name]
            if not ok_number or not low <= value <= high:
                message = _("A number from %(low)s to %(high)s.") % {"low": low, "high": high}
                problems.append(Problem(f"params.{name}", message))
        elif name == "max_tokens":
            if not isinstance(value, int) or isinstance(value, bool):
                problems.append(Problem("params.max_tokens", _("A whole number.")))
            elif not 1 <= value <= MAX_TOKENS_LIMIT:
                message = _("From 1 to %(n)s.") % {"n": MAX_TOKENS_LIMIT}
                problems.append(Problem("params.max_tokens", message))
        else:
            problems.append(Problem(f"params.{name}"[:80], _("Unknown parameter.")))
    return problems


def _model_problems(model: Any, *, actor: Any, course: Course | None) -> list[Problem]:
    if not isinstance(model, str) or not model.strip():
        return [Problem("model", _("Pick a model."))]
    if not registry.model_exists(model):
        return [Problem("model", _("There is no model “%(m)s”.") % {"m": model})]
    if course is not None and not can(actor, MODEL_USE, model, course=course):
        return [Problem("model", _("This course may not use “%(m)s”.") % {"m": model})]
    return []


def _starters_problems(starters: Any) -> list[Problem]:
    ok = isinstance(starters, list) and len(starters) <= MAX_STARTERS
    if not ok or not all(isinstance(s, str) and 0 < len(s) <= 200 for s in starters):
        message = _("Up to %(n)s starters, each a short text.") % {"n": MAX_STARTERS}
        return [Problem("starters", message)]
    return []


def _tests_problems(tests: Any, specs: list[InputSpec]) -> list[Problem]:
    if not isinstance(tests, list) or len(tests) > MAX_TESTS:
        return [Problem("tests", _("At most %(n)s test cases.") % {"n": MAX_TESTS})]
    problems: list[Problem] = []
    for index, test in enumerate(tests):
        where = f"tests[{index}]"
        if not isinstance(test, dict):
            problems.append(Problem(where, _("Each test case must be an object.")))
            continue
        name = test.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 200:
            problems.append(Problem(f"{where}.name", _("Give the test case a name.")))
        try:
            inputs_clean(specs, test.get("inputs") or {})
        except TemplateInvalid as exc:
            for problem in exc.problems:
                problems.append(Problem(f"{where}.{problem.field}", problem.message))
        problems += checks_parse(test.get("checks"), where=f"{where}.checks")[1]
    return problems


def content_check(content: dict[str, Any], *, actor: Any, course: Course | None) -> CheckedContent:
    """The content normalised, or ``TemplateInvalid`` listing every problem."""
    specs, problems = schema_parse(content.get("variables"))
    engine = content.get("engine") or Engine.PLAIN.value
    if engine not in {e.value for e in Engine}:
        problems.append(Problem("engine", _("Pick plain or logic.")))
        engine = Engine.PLAIN.value
    system, user = content.get("system_prompt") or "", content.get("user_prompt") or ""
    if not isinstance(system, str) or not isinstance(user, str):
        raise TemplateInvalid(str(_("The prompts must be text.")), [])
    use_notes = bool(content.get("use_notes", False))
    problems += template_problems(
        system_prompt=system, user_prompt=user, engine=engine, specs=specs, use_notes=use_notes
    )
    problems += _model_problems(content.get("model"), actor=actor, course=course)
    problems += _params_problems(content.get("params") or {})
    problems += _starters_problems(content.get("starters") or [])
    notes_count = content.get("notes_count", 5)
    if not isinstance(notes_count, int) or not 1 <= notes_count <= MAX_NOTES:
        problems.append(Problem("notes_count", _("From 1 to %(n)s.") % {"n": MAX_NOTES}))
    tests = content.get("tests") or []
    problems += _tests_problems(tests, specs)
    if problems:
        raise TemplateInvalid(str(_("The template needs another look.")), problems)
    fields = {
        "engine": engine,
        "system_prompt": system,
        "user_prompt": user,
        "variables": [spec.as_dict() for spec in specs],
        "model": content["model"].strip(),
        "params": dict(content.get("params") or {}),
        "use_notes": use_notes,
        "notes_count": notes_count,
        "starters": list(content.get("starters") or []),
    }
    return CheckedContent(fields, specs, tests)
