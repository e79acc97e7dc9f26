"""``manage.py lti_keys list|rotate|prune`` — CAIPI's LTI signing keys."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from lms_connectors import keys
from lms_connectors.models import ToolKey


class Command(BaseCommand):
    help = (
        "Manage CAIPI's LTI tool keys. 'rotate' makes a new signing key; the old one stays "
        "in /lti/jwks/ for CAIPI_LTI_KEY_GRACE_DAYS. 'prune' deletes keys past their grace."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "rotate", "prune"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "rotate":
            key = keys.tool_key_rotate()
            self.stdout.write(f"New signing key {key.kid}; previous keys published during grace.")
        elif action == "prune":
            self.stdout.write(f"Deleted {keys.tool_key_prune()} key(s) past their grace period.")
        else:
            keys.signing_key()  # makes the first key if there is none
            for key in ToolKey.objects.all():
                state = "active" if key.is_active else f"retired {key.retired_at:%Y-%m-%d %H:%M}"
                self.stdout.write(f"{key.kid}  created {key.created_at:%Y-%m-%d %H:%M}  {state}")
