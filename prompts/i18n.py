"""The language of the prompts pages: the one the LMS launch gave the user, if CAIPI
speaks it, else what the browser asks for (Django's LocaleMiddleware)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.conf import settings
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import translation

SPOKEN = {code for code, _name in settings.LANGUAGES}


def user_language(user: Any) -> str | None:
    """``de`` for a user whose LMS locale is ``de-DE`` or ``de_AT``; None if not spoken."""
    locale = (getattr(user, "locale", "") or "").replace("_", "-").split("-", 1)[0].lower()
    return locale if locale in SPOKEN else None


View = TypeVar("View", bound=Callable[..., HttpResponseBase])


def in_user_language(view: View) -> View:
    """Render ``view`` in the user's LMS language when there is one."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        language = user_language(request.user) if request.user.is_authenticated else None
        if language is None:
            return view(request, *args, **kwargs)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                response.render()
        response.headers.setdefault("Content-Language", language)
        return response

    return cast(View, wrapper)
