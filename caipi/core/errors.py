"""One base for the errors CAIPI expects, and the one handler that turns them into answers.

A domain error carries a stable, user-facing message, an HTTP status, a machine-readable
code and any data a client needs to act on it (which limit was hit, when it resets).
"""

from __future__ import annotations

from typing import Any

from django.core import exceptions as django_exceptions
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler


class ApplicationError(Exception):
    """Base of every error CAIPI raises on purpose.

    ``retryable`` tells callers whether trying again (elsewhere or later) may succeed.
    """

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"
    retryable = False

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def as_openai(self) -> dict[str, Any]:
        """The error in OpenAI's shape: ``{"error": {"message", "type", "code", ...}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "code": self.code,
                "param": None,
                **self.extra,
            }
        }


class NotAuthenticated(ApplicationError):
    status = 401
    code = "invalid_api_key"
    type = "authentication_error"


class PermissionDenied(ApplicationError, django_exceptions.PermissionDenied):
    """Refused: also Django's PermissionDenied, so HTML views answer with the 403 page."""

    status = 403
    code = "permission_denied"
    type = "permission_error"


class NotFound(ApplicationError, Http404):
    """Unknown: also Django's Http404, so HTML views answer with the 404 page."""

    status = 404
    code = "not_found"
    type = "not_found_error"


class PayloadTooLarge(ApplicationError):
    status = 413
    code = "payload_too_large"


class RateLimited(ApplicationError):
    status = 429
    code = "rate_limit_exceeded"
    type = "rate_limit_error"
    retryable = True


class Unavailable(ApplicationError):
    status = 503
    code = "service_unavailable"
    type = "server_error"
    retryable = True


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: ApplicationError and DRF's own errors in one JSON shape."""
    if isinstance(exc, ApplicationError):
        headers = {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(int(exc.extra["retry_after"]))
        return Response(exc.as_openai(), status=exc.status, headers=headers)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        detail = response.data
        message = detail.get("detail", detail) if isinstance(detail, dict) else detail
        response.data = {
            "error": {
                "message": str(message) if not isinstance(message, dict) else "Invalid input.",
                "type": "invalid_request_error",
                "code": exc.get_codes() if isinstance(exc.get_codes(), str) else "invalid",
                "fields": detail if isinstance(detail, dict) and "detail" not in detail else None,
            }
        }
    return response
