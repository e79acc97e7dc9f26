"""The student's template run as a raw ASGI route in front of Django, like ``/v1``.

``POST /api/prompts/templates/<id>/run/`` is what the run page calls for every answer;
through Django's full request path (eight middlewares, each crossing into a thread for its
synchronous part under ASGI, plus session and user reads) it would pay tens of milliseconds
before the first token on a busy machine. caipi/asgi.py sends it here instead. The checks are
Django's own, only reached directly:

1. CSRF: Django's ``CsrfViewMiddleware`` (token in ``X-CSRFToken`` against the cookie, and
   the ``Origin``/``Referer`` rules for HTTPS) on a request object built from the scope.
2. The user: the session cookie, resolved by ``django.contrib.auth.aget_user`` and kept in
   an in-process cache for ``SESSION_TTL`` seconds (a logout reaches this route within that
   time; the session's auth hash is checked whenever it is loaded).
3. The usage policy: an accepted policy is remembered per user for ``SESSION_TTL``.
4. Everything else is the same code as the Django view (``prompt_apis``): one thread hop
   for permission, template, inputs, context and rendering; then the relay.

The Django view stays at the same URL (tests, servers that bypass caipi/asgi.py).
"""

from __future__ import annotations

import io
import logging
import re
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import aget_user
from django.core.handlers.asgi import ASGIRequest
from django.http.response import HttpResponseBase
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import translation
from django.utils.translation import gettext as _

from caipi.core.errors import ApplicationError, NotAuthenticated, PermissionDenied
from caipi.gateway.app import (
    ClientGone,
    read_body,
    require_allowed_host,
    send_error,
    stream_to_client,
)
from caipi.gateway.prompt_runs import PreparedRun, rendered, run_prepare
from caipi.gateway.relay import relay_chat
from caipi.gateway.validation import InvalidRequest, parse_body
from caipi.governance.policy import PolicyNotAccepted
from caipi.governance.principal import aprincipal_for_user
from caipi.governance.selectors import policy_accepted
from prompts.cache import TTLCache
from prompts.i18n import user_language

logger = logging.getLogger(__name__)

RUN_PATH = re.compile(r"^/api/prompts/templates/(\d+)/run/$")
SESSION_TTL = 10.0

_sessions = TTLCache(SESSION_TTL)  # session key -> (user, launch ids) of a signed-in user
_accepted = TTLCache(SESSION_TTL)  # user id -> True once the current policy was accepted


class _CachedSession(dict[str, Any]):
    """The few session values a run reads (the user's LTI launches), without a database read."""


def _csrf_refusal(request: ASGIRequest) -> str | None:
    """Django's CSRF verdict for ``request``: None when it passes, else the reason."""
    middleware = CsrfViewMiddleware(_run_view_marker)
    middleware.process_request(request)
    refused = middleware.process_view(request, _run_view_marker, (), {})
    if refused is None:
        return None
    return getattr(refused, "reason_phrase", "") or "CSRF check failed"


def _run_view_marker(request: Any) -> HttpResponseBase:
    """Stands for the run view in the CSRF check (it is not csrf_exempt); never called."""
    raise NotImplementedError


async def _user(request: ASGIRequest) -> Any:
    """The signed-in user of the session cookie (cached); None for anonymous visitors."""
    from lms_connectors.views import SESSION_LAUNCHES

    key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    cached = _sessions.get(key)
    if cached is not None:
        user, launches = cached
        request.session = _CachedSession({SESSION_LAUNCHES: launches})  # type: ignore[assignment]
        return user
    from importlib import import_module

    engine = import_module(settings.SESSION_ENGINE)
    request.session = engine.SessionStore(key)
    user = await aget_user(request)
    if not user.is_authenticated:
        _sessions.forget(key)
        return None
    launches = list(await request.session.aget(SESSION_LAUNCHES, []))
    _sessions.put(key, (user, launches))
    return user


def _prepare(user: Any, template_id: int, payload: Any, request: ASGIRequest) -> PreparedRun:
    """The policy check (remembered once accepted) and the run's preparation, one hop."""
    if not _accepted.get(user.pk):
        if not policy_accepted(user=user):
            raise PolicyNotAccepted(_("Accept the usage policy first."))
        _accepted.put(user.pk, True)
    return run_prepare(user=user, template_id=template_id, payload=payload, request=request)


async def application(scope: dict[str, Any], receive: Any, send: Any, template_id: int) -> None:
    """Answer one run request (see the module docstring); refusals in OpenAI's error shape."""
    try:
        require_allowed_host(scope)
        if scope["method"] != "POST":
            raise InvalidRequest("Use POST.")
        body = await read_body(scope, receive, settings.GATEWAY_MAX_BODY_BYTES)
        request = ASGIRequest(scope, io.BytesIO(body))
        user = await _user(request)
        language = user_language(user) or translation.get_language_from_request(request)
        with translation.override(language):
            await _run(request, user, template_id, body, receive, send)
    except ApplicationError as exc:
        await send_error(send, exc)
    except ClientGone:
        return  # the client left before its body arrived: nobody to answer


async def _run(
    request: ASGIRequest, user: Any, template_id: int, body: bytes, receive: Any, send: Any
) -> None:
    reason = _csrf_refusal(request)
    if reason is not None:
        raise PermissionDenied(_("The request failed the CSRF check: %(r)s") % {"r": reason})
    if user is None:
        raise NotAuthenticated(_("Sign in to run templates."))
    try:
        payload = parse_body(body, limit=settings.GATEWAY_MAX_BODY_BYTES)
    except orjson.JSONDecodeError:
        raise InvalidRequest(_("The request body is not valid JSON.")) from None
    prepared = await sync_to_async(_prepare)(user, template_id, payload, request)
    principal = await aprincipal_for_user(user_id=user.pk, course_id=prepared.template.home.pk)
    chunks = await relay_chat(
        principal,
        prepared.body,
        affinity_key=f"template:{prepared.version.pk}",
        template_version_id=prepared.version.pk,
    )
    await stream_to_client(receive, send, rendered(chunks, prepared))


def sessions_forget() -> None:
    """Drop the cached sessions and policy acceptances (tests)."""
    _sessions.clear()
    _accepted.clear()
