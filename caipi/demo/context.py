"""Template context of the demo: the notice every page shows while the demo's real model
is being built (written by ``manage.py demo``, see ``caipi.demo.model``)."""

from __future__ import annotations

from django.http import HttpRequest

from caipi.demo.model import read_notice


def demo_notice(request: HttpRequest) -> dict[str, str | None]:
    """``demo_notice``: the demo's notice, or None (outside a demo: no file, one stat)."""
    return {"demo_notice": read_notice()}
