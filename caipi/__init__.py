"""CAIPI, the Django project.

Importing it binds CAIPI's Celery app (so ``shared_task``s use it in every process, web or
worker) and registers the system checks — here, in the project package, rather than in an
app, so that ``caipi.core`` stays free of the project's own modules. ``caipi.bootstrap``
imports this package before any dependency is installed; the binding then waits until they
are.
"""

from importlib.util import find_spec

if find_spec("celery") is not None and find_spec("django") is not None:
    from caipi import checks  # noqa: F401  (registers the system checks)
    from caipi.celery import app as celery_app

    __all__ = ["celery_app"]
