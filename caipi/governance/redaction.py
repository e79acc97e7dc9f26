"""Keep API keys out of logs: every log record's message is redacted when it is created.

Installed once as a log-record factory (``install()`` from ``AppConfig.ready``), so it
covers every logger and handler — including ones configured later by servers — rather
than only the handlers present at start-up. Prompt and answer text is never passed to a
logger in CAIPI in the first place; this guards against keys pasted into places that are
logged (URLs, error messages).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

KEY_IN_TEXT = re.compile(r"caipi-([a-z0-9]{8})-[A-Za-z0-9]{8,}")
BEARER = re.compile(r"(?i)(bearer\s+)(?!caipi-)[A-Za-z0-9._\-]{16,}")

_installed = False


def redact(text: str) -> str:
    """``text`` with API keys shortened to their visible prefix and bearer tokens hidden."""
    return BEARER.sub(r"\1[redacted]", KEY_IN_TEXT.sub(r"caipi-\1-[redacted]", text))


def _redacted(value: Any) -> Any:
    """``value`` itself, or its redacted text when its text holds a key or token."""
    if isinstance(value, (int, float)) or value is None:
        return value  # numbers keep their type: %d and %.2f still format them
    text = value if isinstance(value, str) else str(value)
    clean = redact(text)
    return value if clean == text else clean


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place, keeping the *shape* of its arguments.

    Handlers format ``msg % args`` themselves, and some read ``args`` directly (uvicorn's
    access formatter unpacks its five arguments), so each argument is redacted on its own
    and ``args`` stays a tuple (or mapping) of the same length. Only when a key spans the
    message and an argument — redacting the parts did not clean the whole — is the whole
    message formatted into ``msg`` and ``args`` emptied (an empty tuple, never ``None``).
    """
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    args = record.args
    if isinstance(args, tuple):
        record.args = tuple(_redacted(arg) for arg in args)
    elif isinstance(args, Mapping):
        record.args = {name: _redacted(value) for name, value in args.items()}
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it for the handler to report
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, ()


def install() -> None:
    """Wrap the log-record factory so every record is redacted when made (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it for the handler to report
            return record
        if "caipi-" in message or "earer" in message:
            redact_record(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
