"""``manage.py prompts_messages``: refresh and compile the prompts pages' German catalogs.

Collects every marked string of the prompts app (Python, templates, scripts) and of the
gateway's template endpoints (``caipi/gateway/prompt_*.py``) into
``prompts/locale/de/LC_MESSAGES/{django,djangojs}.po`` (``makemessages``), then compiles them
with gettext's ``msgfmt``. Translate the new empty ``msgstr`` entries in between:
``--compile-only`` compiles without collecting.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

LOCALE = Path(settings.BASE_DIR) / "prompts" / "locale" / "de" / "LC_MESSAGES"
# Everything that is not the prompts app or the gateway's prompt_* modules.
IGNORE = [
    ".venv", "var", "docs", "tests", "deploy", "lms_connectors", "rag", "caipi/core",
    "caipi/governance", "caipi/demo", "caipi/gateway/[!p]*", "caipi/gateway/permissions.py",
]  # fmt: skip


class Command(BaseCommand):
    help = "Refresh (makemessages) and compile (msgfmt) the prompts pages' German catalogs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--compile-only", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["compile_only"]:
            for domain in ("django", "djangojs"):
                call_command(
                    "makemessages", locale=["de"], domain=domain, ignore_patterns=IGNORE,
                    no_location=True, no_obsolete=True, verbosity=0,
                )  # fmt: skip
        msgfmt = shutil.which("msgfmt")
        if msgfmt is None:
            raise CommandError("msgfmt is missing: apt-get install gettext")
        for domain in ("django", "djangojs"):
            po, mo = LOCALE / f"{domain}.po", LOCALE / f"{domain}.mo"
            subprocess.run([msgfmt, "--check", "-o", str(mo), str(po)], check=True)
        self.stdout.write(f"compiled {LOCALE}")
