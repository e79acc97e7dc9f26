"""System checks for settings that parse but do not make sense together."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

_LEVELS = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}


@register(Tags.security, deploy=False)
def check_settings(app_configs: Any, **kwargs: Any) -> list[Error | Warning]:
    """Semantic checks on CAIPI's settings; each message names the variable and the fix."""
    problems: list[Error | Warning] = []
    if settings.LOG_LEVEL.upper() not in _LEVELS:
        problems.append(
            Error(
                f"LOG_LEVEL={settings.LOG_LEVEL!r} is not a log level.",
                hint=f"Set LOG_LEVEL to one of {', '.join(sorted(_LEVELS))}.",
                id="caipi.E001",
            )
        )
    host = urlsplit(settings.SITE_URL or "").hostname or ""
    if host and "*" not in settings.ALLOWED_HOSTS and not _host_allowed(host):
        problems.append(
            Error(
                f"SITE_URL's host {host!r} is not in ALLOWED_HOSTS.",
                hint=f"Add {host} to ALLOWED_HOSTS (comma-separated).",
                id="caipi.E002",
            )
        )
    if not settings.DEBUG and settings.SITE_URL.startswith("https://") and not settings.REDIS_URL:
        problems.append(
            Warning(
                "REDIS_URL is unset on a public (https) site: quotas and router state are "
                "kept per process, so several web processes cannot share them.",
                hint="Set REDIS_URL=redis://host:6379/0.",
                id="caipi.W001",
            )
        )
    return problems


def _host_allowed(host: str) -> bool:
    for allowed in settings.ALLOWED_HOSTS:
        if allowed == host or (allowed.startswith(".") and host.endswith(allowed)):
            return True
        if allowed.strip("[]") == host:
            return True
    return False
