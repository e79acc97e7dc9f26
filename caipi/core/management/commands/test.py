"""``manage.py test``: run CAIPI's pytest suite (replaces Django's unittest runner).

Every argument after ``test`` goes to pytest unchanged, e.g.
``python3 manage.py test tests/deploy -k simulator -x``.
"""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the test suite with pytest; extra arguments are passed to pytest."

    def run_from_argv(self, argv: list[str]) -> NoReturn:
        import pytest

        sys.exit(pytest.main(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - run_from_argv
        raise NotImplementedError
