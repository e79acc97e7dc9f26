"""Logic templates: Jinja2's ``ImmutableSandboxedEnvironment``, narrowed further.

Lecturer templates are untrusted input (Jinja2's sandbox has had escapes, CVE-2024-56326
and CVE-2025-27516, fixed in 3.1.6, which we require). On top of the sandbox:

1. **Checked before compiling** (``check_logic``): only output, ``if`` and non-recursive
   ``for`` (nested at most ``MAX_LOOP_DEPTH``) are allowed — no ``set``, macros, calls
   of anything but ``range``, imports, includes, blocks or ``**``. Every name must be a
   known variable, a loop variable, ``loop`` or ``range``; no attribute starts with ``_``.
2. **No attribute access to Python objects** at run time: ``a.b`` looks up the key ``b``
   of a dict and nothing else (``loop.index`` and friends aside).
3. **Only listed filters and tests**; ``range`` stops at ``MAX_RANGE``; ``*`` and ``+``
   refuse results longer than ``MAX_PRODUCT`` characters or items.
4. **Bounded output and time** while rendering: more than ``MAX_OUTPUT`` characters or
   ``MAX_SECONDS`` of work stops the render with ``RenderRefused``.

With loops nested twice over at most ``MAX_RANGE`` (or the bounded data lists) items, a
template does at most tens of thousands of steps, and the checks in 4 end it early.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from django.utils.translation import gettext_lazy as _
from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError
from jinja2.runtime import LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from caipi.core.errors import ApplicationError
from prompts.variables import InputSpec, Problem, is_known, suggestion

MAX_RANGE = 100
MAX_LOOP_DEPTH = 2
MAX_PRODUCT = 2000
MAX_OUTPUT = 100_000
MAX_SECONDS = 0.2
MAX_SOURCE = 20_000
ROOTS = frozenset({"course", "user", "launch", "now", "passages", "input"})
LOOP_ATTRIBUTES = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"}
)
FILTERS = (
    "abs", "capitalize", "count", "default", "d", "first", "float", "int", "join", "last",
    "length", "list", "lower", "max", "min", "replace", "reverse", "round", "sort", "string",
    "sum", "title", "trim", "truncate", "unique", "upper", "wordcount",
)  # fmt: skip
TESTS = (
    "defined", "undefined", "none", "number", "string", "sequence", "mapping", "boolean",
    "even", "odd", "divisibleby", "eq", "ne", "lt", "le", "gt", "ge", "in", "lessthan",
    "greaterthan", "equalto", "sameas",
)  # fmt: skip
_ALLOWED_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.If, nodes.For, nodes.Name,
    nodes.Const, nodes.Getattr, nodes.Getitem, nodes.Slice, nodes.Filter, nodes.Test,
    nodes.Compare, nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.CondExpr,
    nodes.Concat, nodes.Add, nodes.Sub, nodes.Mul, nodes.Div, nodes.FloorDiv, nodes.Mod,
    nodes.Neg, nodes.Pos, nodes.List, nodes.Tuple, nodes.Call, nodes.Keyword,
)  # fmt: skip


class RenderRefused(ApplicationError):
    """A template did something rendering does not allow (too long, too slow, unsafe)."""

    code = "template_render_refused"


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items")
    return numbers


def _bounded_replace(value: Any, old: str, new: str, count: int | None = None) -> str:
    text = str(value).replace(str(old), str(new), -1 if count is None else count)
    if len(text) > MAX_OUTPUT:
        raise SecurityError("replace() result too long")
    return text


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else 0


class CaipiSandbox(ImmutableSandboxedEnvironment):
    """The sandbox described in the module docstring (points 2 and 3)."""

    intercepted_binops = frozenset({"*", "+", "**"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, keep_trailing_newline=True)
        self.filters = {name: self.filters[name] for name in FILTERS}
        self.filters["replace"] = _bounded_replace
        self.tests = {name: self.tests[name] for name in TESTS}
        self.globals = {"range": _bounded_range}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return False

    def is_safe_callable(self, obj: Any) -> bool:
        return obj is _bounded_range

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, LoopContext) and attribute in LOOP_ATTRIBUTES:
            return getattr(obj, attribute)
        return self.getitem(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(obj, dict) and isinstance(argument, str) and not argument.startswith("_"):
            if argument in obj:
                return obj[argument]
        elif isinstance(obj, list | tuple | str) and isinstance(argument, int | slice):
            try:
                return obj[argument]
            except IndexError:
                pass
        return self.undefined(obj=obj, name=str(argument))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        """``*`` and ``+`` are checked *before* they run: the product of a huge repeat
        would be allocated before any check after it."""
        if operator == "**":
            raise SecurityError("the power operator is not available")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                repeated = isinstance(sequence, str | list | tuple) and isinstance(times, int)
                if repeated and len(sequence) * max(times, 0) > MAX_PRODUCT:
                    raise SecurityError("repetition result too long")
        elif operator == "+" and _size(left) + _size(right) > MAX_OUTPUT:
            raise SecurityError("concatenation result too long")
        return super().call_binop(context, operator, left, right)


_ENV = CaipiSandbox()


def _walk(node: nodes.Node, specs: list[InputSpec], scope: frozenset[str], depth: int,
          problems: list[Problem]) -> None:  # fmt: skip
    line = getattr(node, "lineno", None)
    if not isinstance(node, _ALLOWED_NODES):
        what = type(node).__name__.lower()
        message = _("“%(what)s” is not available in templates.") % {"what": what}
        problems.append(Problem("", message, line))
        return
    if isinstance(node, nodes.For):
        if node.recursive or depth >= MAX_LOOP_DEPTH:
            limit = _("Loops can be nested at most %(n)s deep and not be recursive.")
            problems.append(Problem("", limit % {"n": MAX_LOOP_DEPTH}, line))
            return
        _walk(node.iter, specs, scope, depth, problems)
        targets = [node.target, *node.target.find_all(nodes.Name)]
        inner = scope | {n.name for n in targets if isinstance(n, nodes.Name)} | {"loop"}
        for child in (*node.body, *node.else_, *([node.test] if node.test else [])):
            _walk(child, specs, inner, depth + 1, problems)
        return
    if isinstance(node, nodes.Filter) and node.name not in FILTERS:
        problems.append(Problem("", _("Unknown filter “%(f)s”.") % {"f": node.name}, line))
        return
    if isinstance(node, nodes.Test) and node.name not in TESTS:
        problems.append(Problem("", _("Unknown test “%(t)s”.") % {"t": node.name}, line))
        return
    if isinstance(node, nodes.Getattr | nodes.Name):
        _check_reference(node, specs, scope, problems)
        if isinstance(node, nodes.Name):
            return
    if isinstance(node, nodes.Call):
        if not (isinstance(node.node, nodes.Name) and node.node.name == "range"):
            problems.append(Problem("", _("Only range() can be called."), line))
            return
        if node.dyn_args or node.dyn_kwargs:
            problems.append(Problem("", _("Only range() can be called."), line))
            return
        for child in (*node.args, *node.kwargs):
            _walk(child, specs, scope, depth, problems)
        return
    for child in node.iter_child_nodes():
        if isinstance(node, nodes.Getattr) and isinstance(child, nodes.Name):
            continue  # the root of a dotted name was checked with the whole name
        _walk(child, specs, scope, depth, problems)


def _dotted(node: nodes.Node) -> str | None:
    """``course.title`` for a Getattr chain on a Name, else None."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        base = _dotted(node.node)
        return f"{base}.{node.attr}" if base else None
    return None


def _check_reference(node: nodes.Node, specs: list[InputSpec], scope: frozenset[str],
                     problems: list[Problem]) -> None:  # fmt: skip
    line = getattr(node, "lineno", None)
    if isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
        problems.append(Problem("", _("Names starting with _ are not available."), line))
        return
    name = _dotted(node)
    if name is None:
        if isinstance(node, nodes.Getattr):
            problems.append(Problem("", _("Only variables have parts (a.b)."), line))
        return
    root = name.split(".", 1)[0]
    if root in scope or root == "range":
        if root == "loop" and "." in name and name.split(".")[1] not in LOOP_ATTRIBUTES:
            problems.append(Problem("", _("Unknown loop attribute in “%s”.") % name, line))
        return
    if root not in ROOTS:
        problems.append(Problem("", _("Unknown variable “%(name)s”.") % {"name": name}, line))
        return
    parent = getattr(node, "_caipi_parent_is_getattr", False)
    if not parent and name not in ROOTS and not is_known(name, specs):
        message = str(_("Unknown variable “%(name)s”.") % {"name": name})
        problems.append(Problem("", message + suggestion(name, specs), line))


def check_logic(source: str, specs: list[InputSpec]) -> list[Problem]:
    """Everything wrong with a logic template (syntax, unknown names, forbidden parts)."""
    if len(source) > MAX_SOURCE:
        return [Problem("", _("At most %(n)s characters.") % {"n": MAX_SOURCE})]
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [Problem("", _("Template syntax: %(e)s") % {"e": exc.message}, exc.lineno)]
    for getattr_node in tree.find_all(nodes.Getattr):
        if isinstance(getattr_node.node, nodes.Getattr):
            getattr_node.node._caipi_parent_is_getattr = True  # type: ignore[attr-defined]
    problems: list[Problem] = []
    _walk(tree, specs, frozenset(), 0, problems)
    return problems


@lru_cache(maxsize=512)
def compile_logic(source: str) -> Any:
    """The compiled template (call after ``check_logic`` found nothing). Cached."""
    return _ENV.from_string(source)


def render_logic(source: str, values: dict[str, Any]) -> str:
    """Render with bounded output and time; raises ``RenderRefused``."""
    deadline = time.perf_counter() + MAX_SECONDS
    size = 0
    parts: list[str] = []
    try:
        chunks: Iterator[str] = compile_logic(source).generate(values)
        for chunk in chunks:
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderRefused(str(_("The rendered prompt is too long.")))
            if time.perf_counter() > deadline:
                raise RenderRefused(str(_("The template took too long to render.")))
            parts.append(chunk)
    except (SecurityError, RecursionError, MemoryError) as exc:
        raise RenderRefused(str(_("The template tried something not allowed."))) from exc
    except (TemplateError, TypeError, ValueError, ZeroDivisionError, OverflowError) as exc:
        message = _("The template failed: %(e)s") % {"e": str(exc)[:200]}
        raise RenderRefused(str(message)) from exc
    return "".join(parts)
