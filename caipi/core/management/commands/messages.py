"""``manage.py messages``: refresh and compile the UI's German catalogs.

Collects every string marked for translation in the project (Python, templates, scripts)
into ``locale/de/LC_MESSAGES/{django,djangojs}.po`` with Django's ``makemessages``, then
compiles them with gettext's ``msgfmt``. Translate the new empty (or fuzzy) ``msgstr``
entries in between and run ``manage.py messages --compile-only``.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from caipi.core import messages


class Command(BaseCommand):
    help = "Refresh (makemessages) and compile (msgfmt) the German catalogs in locale/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--compile-only", action="store_true", help="Compile without collecting first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if not options["compile_only"]:
                messages.collect()
            compiled = messages.compile_all()
        except messages.GettextMissing as missing:
            raise CommandError(str(missing)) from missing
        for path in compiled:
            stats = messages.statistics(path.with_suffix(".po"))
            self.stdout.write(f"{path.relative_to(messages.BASE)}: {stats}")
