"""ASGI entry point: static files answered before Django, everything else by Django."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402  (after Django is set up)
from servestatic import ServeStaticASGI  # noqa: E402

application = ServeStaticASGI(
    django_application,
    root=settings.STATIC_ROOT,
    prefix=settings.STATIC_URL,
    autorefresh=settings.DEBUG,
)
