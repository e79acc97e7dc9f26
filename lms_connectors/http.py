"""The one way CAIPI talks HTTP to an LMS: a ``requests`` session with a timeout.

``requests`` because pylti1p3 takes a ``requests.Session`` for its own calls (platform JWKS,
access tokens, names-and-roles, grades); registration and the Moodle web services client use
the same session type, so every call to an LMS shares one timeout, one User-Agent and one
error type (``requests.RequestException``).
"""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

HttpError = requests.RequestException
LmsSession = requests.Session


class TimeoutSession(requests.Session):
    """A session whose every call has a timeout (LTI_HTTP_TIMEOUT) unless the caller sets one."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", settings.LTI_HTTP_TIMEOUT)
        return super().request(*args, **kwargs)


def lms_session() -> requests.Session:
    """A new session for calls to an LMS; close it (or use it in ``with``) when done."""
    session = TimeoutSession()
    session.headers["User-Agent"] = "CAIPI-LTI"
    return session
