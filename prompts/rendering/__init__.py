"""Checking and rendering a template version's prompts (see ``plain`` and ``sandbox``).

``template_problems`` is what authoring calls on every save and every live preview: every
syntax error, unknown or misspelt variable (with a suggestion) and forbidden construct,
each with the prompt field and, where it can, the line and column. ``render_prompts`` turns
a valid version plus a ``RunContext`` into the system and user messages.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from django.utils.translation import gettext_lazy as _

from prompts.rendering.data import Passage, RunContext, flat_values, nested_values
from prompts.rendering.plain import compile_plain
from prompts.rendering.sandbox import RenderRefused, check_logic, render_logic
from prompts.variables import InputSpec, Problem, is_known, suggestion

__all__ = [
    "Engine",
    "Passage",
    "Prompts",
    "RenderRefused",
    "RunContext",
    "render_prompts",
    "template_problems",
]

PROMPT_FIELDS = ("system_prompt", "user_prompt")
MAX_PROMPT = 20_000


class Engine(StrEnum):
    """How a template is written: plain placeholders (default) or sandboxed logic."""

    PLAIN = "plain"
    LOGIC = "logic"


@dataclass(frozen=True)
class Prompts:
    """The rendered messages of one run."""

    system: str
    user: str


def _plain_problems(field: str, source: str, specs: list[InputSpec]) -> list[Problem]:
    template, syntax = compile_plain(source)
    problems = [replace(problem, field=field) for problem in syntax]
    for ref in template.refs:
        if not is_known(ref.name, specs):
            message = _("Unknown variable “%(name)s”.") % {"name": ref.name}
            message = str(message) + suggestion(ref.name, specs)
            problems.append(Problem(field, message, ref.line, ref.column))
    return problems


def _uses_passages(source: str, engine: Engine) -> bool:
    if engine == Engine.PLAIN:
        return any(ref.name == "passages" for ref in compile_plain(source)[0].refs)
    return "passages" in source


def template_problems(
    *, system_prompt: str, user_prompt: str, engine: str, specs: list[InputSpec], use_notes: bool
) -> list[Problem]:
    """Every problem of a version's prompts; empty when it can be saved and rendered."""
    problems: list[Problem] = []
    if not user_prompt.strip():
        problems.append(Problem("user_prompt", _("Write the prompt students send.")))
    for field, source in zip(PROMPT_FIELDS, (system_prompt, user_prompt), strict=True):
        if len(source) > MAX_PROMPT:
            limit = _("At most %(n)s characters.") % {"n": MAX_PROMPT}
            problems.append(Problem(field, limit))
            continue
        if engine == Engine.LOGIC:
            found = [replace(p, field=field) for p in check_logic(source, specs)]
        else:
            found = _plain_problems(field, source, specs)
        found.sort(key=lambda p: (p.line or 0, p.column or 0))
        problems += list(dict.fromkeys(found))  # one line per problem, even if seen twice
        if _uses_passages(source, Engine(engine)) and not use_notes:
            message = _("“passages” needs lecture-note retrieval switched on for this template.")
            problems.append(Problem(field, message))
    return problems


def render_prompts(
    *, system_prompt: str, user_prompt: str, engine: str, specs: list[InputSpec],
    context: RunContext,
) -> Prompts:  # fmt: skip
    """The system and user messages for ``context``. The version must be free of problems
    (it is: versions are checked when saved). Raises ``RenderRefused`` (logic templates
    that hit a bound at run time)."""
    if engine == Engine.LOGIC:
        values = nested_values(context, specs)
        return Prompts(render_logic(system_prompt, values), render_logic(user_prompt, values))
    flat = flat_values(context, specs)
    return Prompts(
        compile_plain(system_prompt)[0].render(flat), compile_plain(user_prompt)[0].render(flat)
    )
