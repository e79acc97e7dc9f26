"""Let registered LMSs frame CAIPI's pages (LTI launches open in Moodle's iframe).

Replaces Django's XFrameOptionsMiddleware (settings' LTI section swaps it): pages get
``Content-Security-Policy: frame-ancestors 'self' <origins of the active platforms>``
instead of ``X-Frame-Options: DENY``. Admin pages keep DENY.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.core.cache import cache
from django.http import HttpRequest, HttpResponse

from lms_connectors.models import Platform

CACHE_KEY = "caipi-lti-frame-ancestors"
CACHE_SECONDS = 60


def frame_ancestors() -> str:
    """The CSP source list: 'self' and each active platform's origin (cached a minute)."""
    cached = cache.get(CACHE_KEY)
    if cached is None:
        origins = set()
        for issuer in Platform.objects.filter(is_active=True).values_list("issuer", flat=True):
            parts = urlsplit(issuer)
            if parts.scheme in ("http", "https") and parts.netloc:
                origins.add(f"{parts.scheme}://{parts.netloc}")
        cached = " ".join(["'self'", *sorted(origins)])
        cache.set(CACHE_KEY, cached, CACHE_SECONDS)
    return cached


class FrameAncestorsMiddleware:
    """Sets frame-ancestors from the registered platforms; X-Frame-Options on admin pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if getattr(response, "xframe_options_exempt", False):
            return response
        if not response.get("Content-Type", "").startswith("text/html"):
            return response  # only pages can be framed; keeps the API hot path free of lookups
        if request.path.startswith("/admin/"):
            response.headers.setdefault("X-Frame-Options", "DENY")
        elif "Content-Security-Policy" not in response.headers:
            response.headers["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors()}"
        return response
