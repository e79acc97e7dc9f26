"""What can go wrong talking to Moodle's web services, each said to whoever can fix it.

Messages name no person and no token. ``retryable`` errors (Moodle down, a 5xx) are worth
retrying; the others need someone to change a setting first.
"""

from __future__ import annotations

from caipi.core.errors import ApplicationError

TOKEN_FIX = (
    "A CAIPI administrator sets a new token for this LMS in Admin > LTI platforms "
    "(Moodle: Site administration > Server > Web services > Manage tokens)."
)


class MoodleError(ApplicationError):
    """A failed call to Moodle's web services, with a stable ``code``."""

    type = "moodle_error"
    status = 502  # an upstream (the LMS) failed or refused

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = transient


def not_configured() -> MoodleError:
    return MoodleError(
        "moodle_not_configured",
        "No Moodle web service token is set for this course's LMS. " + TOKEN_FIX,
    )


def token_rejected() -> MoodleError:
    return MoodleError(
        "moodle_token_invalid",
        "Moodle refused CAIPI's web service token (wrong or expired). " + TOKEN_FIX,
    )


def access_denied(function: str) -> MoodleError:
    return MoodleError(
        "moodle_access_denied",
        f"Moodle does not let CAIPI's service user call {function}: add the function to the "
        "CAIPI service and give the service user the capabilities the admin guide lists.",
    )


def web_services_off() -> MoodleError:
    return MoodleError(
        "moodle_web_services_off",
        "Moodle's web services or its REST protocol are turned off "
        "(Site administration > Server > Web services > Overview).",
    )


def unavailable() -> MoodleError:
    return MoodleError(
        "moodle_unavailable",
        "Moodle did not answer. Try again later; if it persists, the LMS administrator "
        "checks that Moodle is up and reachable from CAIPI's server.",
        transient=True,
    )


def not_json() -> MoodleError:
    return MoodleError(
        "moodle_not_json",
        "Moodle answered with a web page instead of data: check that the LMS address is "
        "Moodle's own address (wwwroot) and that the REST protocol is enabled.",
    )


def file_gone(name: str) -> MoodleError:
    return MoodleError(
        "moodle_file_gone",
        f"“{name}” is no longer in Moodle (deleted or moved since it was listed); the next "
        "sync leaves it out.",
    )


def refused(function: str, errorcode: str) -> MoodleError:
    return MoodleError(
        "moodle_refused",
        f"Moodle refused {function} ({errorcode}).",
    )
