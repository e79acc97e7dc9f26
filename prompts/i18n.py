"""The language of the prompts pages: the user's (``caipi.core.i18n.user_language``: the one
they chose, else the LMS launch's), else what the browser asks for. The project's
middleware does this for every page; this decorator keeps views that render outside it
(tests calling them directly, the script catalog) in the same language."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.utils import translation

from caipi.core.i18n import user_language

__all__ = ["in_user_language", "user_language"]

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
