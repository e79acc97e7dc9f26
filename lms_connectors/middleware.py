"""Let registered LMSs frame CAIPI's pages (LTI launches open in Moodle's iframe).

Replaces Django's XFrameOptionsMiddleware (settings' LTI section swaps it): pages get
``Content-Security-Policy: frame-ancestors 'self' <origins of the active platforms>``
instead of ``X-Frame-Options: DENY``. Admin pages keep DENY.

Pages that carry no action — the registration result, refusals, error pages (any status
of 400 or more) and views marked with ``frameable_anywhere`` — may be shown in any frame:
there is nothing to click-jack on them, and the person in the LMS's frame (an admin in
Moodle's registration dialog, a student of a not yet activated LMS) must read them.

The list of origins is cached a minute; every change of a platform clears it
(``frame_ancestors_forget``), so an activation takes effect at the next request.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse

from lms_connectors.models import Platform

CACHE_KEY = "caipi-lti-frame-ancestors"
CACHE_SECONDS = 60
ANY_FRAME = "frame-ancestors *"


def frameable_anywhere(response: HttpResponse) -> HttpResponse:
    """Mark a page without actions as displayable in any frame; returns the response."""
    response.frame_anywhere = True  # type: ignore[attr-defined]
    return response


def frame_ancestors_forget() -> None:
    """Forget the cached origins now and again when the current transaction commits
    (a request in between may have cached the old list). Call after any platform change."""
    cache.delete(CACHE_KEY)
    transaction.on_commit(lambda: cache.delete(CACHE_KEY))


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
        elif "Content-Security-Policy" in response.headers:
            pass
        elif response.status_code >= 400 or getattr(response, "frame_anywhere", False):
            response.headers["Content-Security-Policy"] = ANY_FRAME
        else:
            response.headers["Content-Security-Policy"] = f"frame-ancestors {frame_ancestors()}"
        return response
