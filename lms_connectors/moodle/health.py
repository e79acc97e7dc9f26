"""Checking a platform's web service setup the way an admin needs it: does the token work,
and which of the functions CAIPI calls are missing from the service."""

from __future__ import annotations

from django.contrib import messages

from lms_connectors.models import Platform
from lms_connectors.moodle.client import FUNCTIONS, MoodleClient
from lms_connectors.moodle.errors import MoodleError, not_configured


def web_services_check(*, platform: Platform) -> tuple[int, str]:
    """A message level and text: OK with the service user's site, or what to fix."""
    try:
        if not platform.ws_token:
            raise not_configured()
        info = MoodleClient(base_url=platform.ws_base_url, token=platform.ws_token).site_info()
    except MoodleError as exc:
        return messages.ERROR, str(exc.message)
    offered = {str(f.get("name")) for f in info.get("functions") or [] if isinstance(f, dict)}
    missing = [name for name in FUNCTIONS if name not in offered]
    if missing:
        return messages.WARNING, "add these functions to the service: " + ", ".join(missing)
    if not info.get("downloadfiles"):
        return messages.WARNING, "enable 'Can download files' on the service."
    return messages.SUCCESS, f"web services work (service user {info.get('username', '?')})."
