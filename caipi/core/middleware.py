"""Middleware of the core: error answers under ``/api/`` in the one JSON shape.

DRF views shape their own errors (``errors.api_exception_handler``), but some answers
under ``/api/`` never reach DRF: an unknown path (Django's 404 page), a method a plain
view does not allow, a plain async view's refusal, an unhandled error (the 500 page). This
middleware turns any such HTML error under ``/api/`` into ``{"error": {...}}`` with the
same status, so an API client never has to parse a page. Pages elsewhere are untouched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from caipi.core.errors import API_PREFIX, api_error_response


def _shaped(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    if (
        response.status_code >= 400
        and request.path.startswith(API_PREFIX)
        and not response.get("Content-Type", "").startswith("application/json")
        and not getattr(response, "streaming", False)
    ):
        shaped = api_error_response(response.status_code)
        for header in ("Retry-After", "WWW-Authenticate", "Allow"):
            if header in response:
                shaped[header] = response[header]
        return shaped
    return response


class ApiErrorShapeMiddleware:
    """Sync and async capable: async views keep running without a thread hop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self._acall(request)
        return _shaped(request, self.get_response(request))

    async def _acall(self, request: HttpRequest) -> HttpResponseBase:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        return _shaped(request, await get_response(request))
