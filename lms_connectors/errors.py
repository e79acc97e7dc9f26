"""Refusals of the LTI tool: one error type, with a stable code, a clear message and a hint.

Messages and hints are shown to the person in the LMS iframe and written to the log, so
they never contain personal data (no names, e-mails, ``sub`` values or tokens).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from caipi.core.errors import ApplicationError, Message


class LtiRefused(ApplicationError):
    """A launch, login or registration CAIPI refuses. ``status`` is 400 unless given."""

    type = "lti_error"

    def __init__(
        self, code: str, message: Message, *, hint: Message = "", status: int = 400
    ) -> None:
        super().__init__(message, extra={"hint": hint} if hint else None)
        self.code = code
        self.hint = hint
        self.status = status


COOKIE_HINT = _(
    "Your browser may block cookies inside the LMS page. Open the activity in a new window, "
    "or allow third-party cookies for this site."
)
CLOCK_HINT = _("Check that the clocks of the LMS server and of CAIPI are synchronised (NTP).")
REGISTRATION_HINT = _(
    "Ask the LMS administrator to check CAIPI's registration (see the admin guide)."
)
