"""Refusals of the LTI tool: one error type, with a stable code, a clear message and a hint.

Messages and hints are shown to the person in the LMS iframe and written to the log, so
they never contain personal data (no names, e-mails, ``sub`` values or tokens).
"""

from __future__ import annotations

from caipi.core.errors import ApplicationError


class LtiRefused(ApplicationError):
    """A launch, login or registration CAIPI refuses. ``status`` is 400 unless given."""

    type = "lti_error"

    def __init__(self, code: str, message: str, *, hint: str = "", status: int = 400) -> None:
        super().__init__(message, extra={"hint": hint} if hint else None)
        self.code = code
        self.hint = hint
        self.status = status


COOKIE_HINT = (
    "Your browser may block cookies inside the LMS page. Open the activity in a new window, "
    "or allow third-party cookies for this site."
)
CLOCK_HINT = "Check that the clocks of the LMS server and of CAIPI are synchronised (NTP)."
REGISTRATION_HINT = "Ask the LMS administrator to check CAIPI's registration (see the admin guide)."
