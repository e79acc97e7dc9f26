"""The audit seam: apps record administrative changes here; governance keeps them.

The core stays free of app imports (see permissions.py): the governance app registers its
recorder at start-up, and apps below it (deploy, lms_connectors) call ``audit`` without
knowing where entries go. Without a registered recorder nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Recorder = Callable[..., Any]
Snapshot = Callable[..., dict[str, Any]]

_recorder: Recorder | None = None
_snapshot: Snapshot | None = None


def register_audit(*, recorder: Recorder, snapshot: Snapshot) -> None:
    """Install the functions that write an entry and describe a row (governance does)."""
    global _recorder, _snapshot
    _recorder, _snapshot = recorder, snapshot


def audit(
    *,
    actor: Any,
    action: str,
    target: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record that ``actor`` (a user, or None for a command or task) did ``action``.

    Call inside the change's transaction. Never pass secrets or prompt text.
    """
    if _recorder is not None:
        _recorder(actor=actor, action=action, target=target, before=before, after=after)


def audit_snapshot(instance: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JSON-ready description of a row for ``before``/``after`` ({} when none installed)."""
    return _snapshot(instance, exclude=exclude) if _snapshot is not None else {}
