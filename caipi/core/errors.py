"""One base for the errors CAIPI expects, and the one handler that turns them into answers.

A domain error carries a stable, user-facing message, an HTTP status, a machine-readable
code and any data a client needs to act on it (which limit was hit, when it resets).
"""

from __future__ import annotations

from typing import Any

from django.core import exceptions as django_exceptions
from django.http import Http404, JsonResponse
from django.utils.functional import Promise
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response

# A message: a str, or a lazily translated one (gettext_lazy), shown in the reader's language.
Message = str | Promise


class ApplicationError(Exception):
    """Base of every error CAIPI raises on purpose.

    ``retryable`` tells callers whether trying again (elsewhere or later) may succeed.
    """

    status = 400
    code = "invalid_request"
    type = "invalid_request_error"
    retryable = False

    def __init__(self, message: Message, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra or {}

    def as_openai(self) -> dict[str, Any]:
        """The error in OpenAI's shape: ``{"error": {"message", "type", "code", ...}}``."""
        extra = {k: str(v) if isinstance(v, Promise) else v for k, v in self.extra.items()}
        error = {"message": str(self.message), "type": self.type, "code": self.code}
        return {"error": {**error, "param": None, **extra}}  # str(): messages may be lazy


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


# The OpenAI error ``type`` of each status, for errors that are not an ApplicationError.
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_body(status: int, message: str, code: str, **extra: Any) -> dict[str, Any]:
    """The one error shape of ``/api/`` and ``/v1``: ``{"error": {"message", "type", "code"}}``."""
    error_type = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": error_type, "code": code, **extra}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: ApplicationError and DRF's own errors in one JSON shape.

    Django's ``Http404`` and ``PermissionDenied`` (``get_object_or_404``, a plain
    ``raise``) are turned into DRF's errors first, so they get the same shape.
    """
    if isinstance(exc, ApplicationError):
        headers = {}
        if "retry_after" in exc.extra:
            headers["Retry-After"] = str(int(exc.extra["retry_after"]))
        return Response(exc.as_openai(), status=exc.status, headers=headers)
    # Imported here: rest_framework.views loads the authentication classes of the settings,
    # and CAIPI's API-key class imports this module.
    from rest_framework.views import exception_handler

    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, django_exceptions.PermissionDenied):
        exc = drf_exceptions.PermissionDenied(str(exc) or None)
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, drf_exceptions.APIException):
        detail = response.data
        message = detail.get("detail", detail) if isinstance(detail, dict) else detail
        codes = exc.get_codes()
        response.data = error_body(
            response.status_code,
            str(message) if not isinstance(message, dict | list) else "Invalid input.",
            codes if isinstance(codes, str) else "invalid",
            fields=detail if isinstance(detail, dict) and "detail" not in detail else None,
        )
    return response


# --- the same shape for what DRF never sees under /api/ -----------------------------------

API_PREFIX = "/api/"

_MESSAGES = {
    400: ("Bad request.", "invalid_request"),
    401: ("Sign in or send 'Authorization: Bearer <key>'.", "not_authenticated"),
    403: ("You may not do this.", "permission_denied"),
    404: ("There is no such resource in this API.", "not_found"),
    405: ("This method is not allowed here.", "method_not_allowed"),
    413: ("The request body is too large.", "payload_too_large"),
    500: ("Internal error: it was logged, please try again later.", "internal_error"),
}


def api_error_response(status: int, message: str | None = None, code: str | None = None) -> Any:
    """A JSON error response in the one shape (for middleware and plain views)."""
    default_message, default_code = _MESSAGES.get(status, ("Request failed.", "error"))
    return JsonResponse(
        error_body(status, message or default_message, code or default_code), status=status
    )


def csrf_failure(request: Any, reason: str = "") -> Any:
    """``CSRF_FAILURE_VIEW``: under ``/api/`` a JSON 403 saying why; elsewhere Django's page."""
    if request.path.startswith(API_PREFIX):
        return api_error_response(403, f"CSRF check failed: {reason}", "csrf_failed")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason=reason)
