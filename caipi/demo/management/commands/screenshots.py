"""``manage.py screenshots``: refresh docs/screenshots/ from the browser tests.

The browser tests of the pages (Playwright + Debian's chromium) save what they see at
desktop width and at 800 px (Moodle's iframe) when ``CAIPI_SCREENSHOT_DIR`` is set; this
command runs them with it pointing at ``docs/screenshots`` so the committed pictures are the
pages as they are now. It needs the test extras (``python3 manage.py test`` installs them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

BROWSER_TESTS = [
    "tests/core/test_pages_browser.py",
    "tests/prompts/test_pages_browser.py",
    "tests/governance/test_usage_pages_browser.py",
]


class Command(BaseCommand):
    help = "Refresh docs/screenshots/ by running the pages' browser tests."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--out", default=str(Path(settings.BASE_DIR) / "docs" / "screenshots"),
            help="folder for the PNG files (default: docs/screenshots)",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        out = Path(options["out"]).resolve()
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CAIPI_SCREENSHOT_DIR": str(out)}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *BROWSER_TESTS]
        done = subprocess.run(command, cwd=settings.BASE_DIR, env=env, check=False)
        if done.returncode != 0:
            raise CommandError("a browser test failed; the screenshots may be incomplete")
        shots = sorted(path.name for path in out.glob("*.png"))
        self.stdout.write(f"{len(shots)} screenshots in {out}: {', '.join(shots)}")
