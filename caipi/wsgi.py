"""WSGI entry point, for management tools; CAIPI is served through ASGI (caipi.asgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")
application = get_wsgi_application()
