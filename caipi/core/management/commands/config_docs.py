"""``manage.py config_docs``: write (or ``--check``) the configuration reference in docs/."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from caipi.core import configdocs


class Command(BaseCommand):
    help = "Regenerate the variable table in docs/configuration.md from the settings."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--check", action="store_true", help="Fail if the document is out of date."
        )

    def handle(self, *args: Any, check: bool = False, **options: Any) -> None:
        current = configdocs.DOC_PATH.read_text()
        wanted = configdocs.render_document(current)
        if check:
            if current != wanted:
                raise CommandError(
                    f"{configdocs.DOC_PATH} is out of date: run python3 manage.py config_docs"
                )
            self.stdout.write("docs/configuration.md is up to date.")
            return
        configdocs.DOC_PATH.write_text(wanted)
        self.stdout.write(f"Wrote {configdocs.DOC_PATH}.")
