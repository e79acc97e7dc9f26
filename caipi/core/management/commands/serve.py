"""``manage.py serve``: the production start command.

1. ``collectstatic``: the pages' styles and the LTI tool icon Moodle shows (its ``logo_uri``)
   are served from STATIC_ROOT, so they exist without anyone remembering to collect them.
2. Django's system checks, with the deployment checks when DEBUG is off: errors stop the
   start, warnings are printed.
3. ``uvicorn caipi.asgi:application`` in place of this process (``exec``), so signals and
   the exit status are the server's, with ``--workers`` processes: CAIPI_WEB_WORKERS, or
   one per CPU core when that is 0 (the default). The workers share their state through
   Redis and PostgreSQL (docs/architecture.md, "Several processes and machines").
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Collect static files, run the checks, then start uvicorn (the production start)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--workers",
            type=int,
            default=None,
            help="uvicorn worker processes (default: CAIPI_WEB_WORKERS; 0 there: one per core).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Collect and check, then print the server command instead of starting it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"Static files collected in {settings.STATIC_ROOT}.")
        call_command("check", deploy=not settings.DEBUG, fail_level="ERROR")
        argv = self.server_argv(
            host=options["host"], port=options["port"], workers=worker_count(options["workers"])
        )
        if options["dry_run"]:
            self.stdout.write(" ".join(argv))
            return
        sys.stdout.flush()
        os.execv(argv[0], argv)  # noqa: S606 (our own argv: the interpreter and uvicorn)

    @staticmethod
    def server_argv(*, host: str, port: int, workers: int) -> list[str]:
        """The uvicorn command line: CAIPI's ASGI app, lifespan on, no server header."""
        return [
            sys.executable, "-m", "uvicorn", "caipi.asgi:application",
            "--host", host, "--port", str(port), "--workers", str(workers),
            "--lifespan", "auto", "--no-server-header", "--proxy-headers",
        ]  # fmt: skip


def worker_count(requested: int | None) -> int:
    """``--workers`` when given, else CAIPI_WEB_WORKERS; 0 means one per CPU core."""
    count = settings.WEB_WORKERS if requested is None else requested
    return count if count > 0 else os.cpu_count() or 1
