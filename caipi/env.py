"""Typed readers for settings that come from the environment.

Every setting CAIPI reads goes through one of these helpers, so that:

* a missing variable falls back to a safe default,
* a variable that cannot be parsed stops start-up with ``ImproperlyConfigured``
  naming the variable, what was found and how to fix it,
* ``docs/configuration.md`` can be checked against the registry of known variables
  (``VARIABLES``) so the operator guide cannot drift from the code.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Variable:
    """One documented environment variable."""

    name: str
    kind: str
    default: str
    help: str


# Filled as settings.py reads each variable; docs/configuration.md is checked against it.
VARIABLES: dict[str, Variable] = {}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _raw(name: str, kind: str, default: object, help: str) -> str | None:
    VARIABLES[name] = Variable(name=name, kind=kind, default=_show(default), help=help)
    return os.environ.get(name)


def _show(default: object) -> str:
    if default is None:
        return "(unset)"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list | tuple):
        return ",".join(str(item) for item in default) or "(empty)"
    return str(default)


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(
        f"{name}={value!r} is not valid: expected {expected}. "
        f"Fix the value of {name} in the environment, or unset it to use the default."
    )


def env_str(name: str, default: str | None, help: str) -> str | None:
    """Return the variable as a string, or ``default`` when unset or empty."""
    value = _raw(name, "string", default, help)
    return value if value else default


def env_bool(name: str, default: bool, help: str) -> bool:
    """Return the variable as a boolean (1/0, true/false, yes/no, on/off)."""
    value = _raw(name, "boolean", default, help)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(name, value, "one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, help: str, *, minimum: int | None = None) -> int:
    """Return the variable as an integer, at least ``minimum`` when given."""
    value = _raw(name, "integer", default, help)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value.strip())
    except ValueError:
        raise _fail(name, value, "a whole number") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"a whole number of at least {minimum}")
    return number


def env_float(name: str, default: float, help: str, *, minimum: float | None = None) -> float:
    """Return the variable as a float, at least ``minimum`` when given."""
    value = _raw(name, "number", default, help)
    if value is None or value.strip() == "":
        return default
    try:
        number = float(value.strip())
    except ValueError:
        raise _fail(name, value, "a number") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"a number of at least {minimum}")
    return number


def env_list(name: str, default: list[str], help: str) -> list[str]:
    """Return a comma-separated variable as a list of stripped, non-empty items."""
    value = _raw(name, "list", default, help)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str | None, help: str, *, schemes: tuple[str, ...]) -> str | None:
    """Return the variable as a URL whose scheme is one of ``schemes``."""
    value = _raw(name, "URL", default, help)
    if not value:
        return default
    parts = urlsplit(value.strip())
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise _fail(name, value, f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
    return value.strip()
