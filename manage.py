#!/usr/bin/env python3
"""Django's command-line utility for CAIPI.

Run with any Python 3.11+: when Django is not importable here, it first creates the
project's virtualenv (.venv), installs CAIPI into it and re-runs itself from there.
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "caipi.settings")
    from caipi.bootstrap import ensure_virtualenv

    ensure_virtualenv(sys.argv)
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
