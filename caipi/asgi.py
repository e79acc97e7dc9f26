"""ASGI entry point: ``/v1/`` and the template run to the gateway, static files, then Django.

The OpenAI-compatible API is dispatched by path prefix *before* Django's handler, to a
raw ASGI app (caipi/gateway/app.py): the hot path pays no middleware and no
sync-to-async hop. A student's template run (``POST /api/prompts/templates/<id>/run/``)
is likewise answered before Django (caipi/gateway/prompt_app.py). The lifespan protocol
(which Django does not speak) starts and stops
the gateway's background refresher; servers without lifespan get it lazily instead.
Every HTTP request goes through ``BodyDeadline`` first: a body that stops arriving gets a
clean 408 instead of holding the request for ever.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)
from servestatic import ServeStaticASGI  # noqa: E402

from caipi.core.slowbody import BodyDeadline  # noqa: E402
from caipi.gateway import background, prompt_app  # noqa: E402
from caipi.gateway.app import application as gateway_application  # noqa: E402
from caipi.governance.services.usage import usage_flush_at_shutdown  # noqa: E402

logger = logging.getLogger(__name__)

GATEWAY_PREFIX = "/v1/"

django_and_static = ServeStaticASGI(
    django_application,
    root=settings.STATIC_ROOT,
    prefix=settings.STATIC_URL,
    autorefresh=settings.DEBUG,
)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await background.ensure_started()
            except Exception:  # the gateway retries lazily; the site itself can still serve
                logger.exception("gateway start-up failed; it will retry on first use")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await background.stop()
            # Now, not at exit: a server stopped by a signal may end without atexit.
            await asyncio.to_thread(usage_flush_at_shutdown)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Route one ASGI connection: lifespan, the /v1 gateway, or static files and Django."""
    if scope["type"] == "http" and scope["path"].startswith(GATEWAY_PREFIX):
        await gateway_application(scope, receive, send)
    elif scope["type"] == "http" and (run := prompt_app.RUN_PATH.match(scope["path"])):
        await prompt_app.application(scope, receive, send, int(run.group(1)))
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
    else:
        await django_and_static(scope, receive, send)


# A request body that stops arriving is answered 408 after CAIPI_BODY_TIMEOUT seconds.
application = BodyDeadline(_route, lambda: settings.GATEWAY_BODY_TIMEOUT)
