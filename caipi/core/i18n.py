"""The language of CAIPI's pages for a user: the one they chose with the switch (remembered
on the user), else the one their LMS launch gave (``launch_presentation.locale``), if CAIPI
speaks it; else Django's choice (language cookie, then the browser's Accept-Language)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import translation

SPOKEN = {code for code, _name in settings.LANGUAGES}


def spoken(locale: str | None) -> str | None:
    """``de`` for ``de-DE`` or ``de_AT``; None for a language CAIPI does not speak."""
    code = (locale or "").replace("_", "-").split("-", 1)[0].lower()
    return code if code in SPOKEN else None


def user_language(user: Any) -> str | None:
    """The user's chosen language, else their LMS locale's; None when neither is spoken."""
    return spoken(getattr(user, "language", "")) or spoken(getattr(user, "locale", ""))


class UserLanguageMiddleware:
    """After Django's LocaleMiddleware and the authentication: a signed-in user's pages are
    in ``user_language(user)`` when there is one (the session is loaded anyway)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        language = user_language(user) if user is not None and user.is_authenticated else None
        if language is not None and language != translation.get_language():
            translation.activate(language)
            request.LANGUAGE_CODE = language
        response = self.get_response(request)
        if language is not None:
            response.headers["Content-Language"] = language
        return response
