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
from typing import Any

KEY_IN_TEXT = re.compile(r"caipi-([a-z0-9]{8})-[A-Za-z0-9]{8,}")
BEARER = re.compile(r"(?i)(bearer\s+)(?!caipi-)[A-Za-z0-9._\-]{16,}")

_installed = False


def redact(text: str) -> str:
    """``text`` with API keys shortened to their visible prefix and bearer tokens hidden."""
    return BEARER.sub(r"\1[redacted]", KEY_IN_TEXT.sub(r"caipi-\1-[redacted]", text))


def install() -> None:
    """Wrap the log-record factory so every record's message is redacted (idempotent)."""
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
            record.msg, record.args = redact(message), None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
