"""The UI's German catalogs: where they live, what is scanned, and the checks on them.

One catalog for the whole project (``locale/de/LC_MESSAGES/django.po`` for templates and
Python, ``djangojs.po`` for the pages' scripts), collected by Django's ``makemessages`` from
every app and compiled by gettext's ``msgfmt``. ``manage.py messages`` refreshes and
compiles it; ``tests/core/test_translations.py`` extracts the strings into a temporary
directory and fails on any string without a German translation (untranslated or fuzzy),
and on compiled ``.mo`` files that are not current.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.commands.makemessages import Command as MakeMessages
from django.test.utils import override_settings

BASE = Path(settings.BASE_DIR)
LOCALE = BASE / "locale"
LANGUAGES = ["de"]
DOMAINS = ("django", "djangojs")
# Folders that hold no UI strings (or not ours): never scanned.
IGNORE = [
    "*.venv*",
    "var",
    "docs",
    "tests",
    "node_modules",
    "locale",
    ".git",
    "build",
    "*.egg-info",
]
FIX_COMMAND = ".venv/bin/python manage.py messages"


class GettextMissing(RuntimeError):
    """gettext's tools (xgettext, msgfmt, msgcmp) are not installed."""


def gettext_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise GettextMissing(f"{name} is missing: apt-get install gettext")
    return found


def catalog(language: str, domain: str, *, root: Path = LOCALE) -> Path:
    return root / language / "LC_MESSAGES" / f"{domain}.po"


def collect(*, into: Path | None = None) -> Path:
    """Run makemessages over the project; into the committed catalogs (``into=None``) or into
    ``into/locale`` after copying the sources there (a dry run that changes nothing)."""
    source, locale = BASE, LOCALE
    if into is not None:
        source, locale = into / "src", into / "src" / "locale"
        shutil.copytree(BASE, source, ignore=shutil.ignore_patterns(*IGNORE, "__pycache__"))
        locale.mkdir()
    previous = Path.cwd()
    os.chdir(source)
    try:
        with override_settings(LOCALE_PATHS=[locale]):
            for domain in DOMAINS:
                command = MakeMessages()
                # A guessed ("fuzzy") translation of a similar string is worse than none.
                command.msgmerge_options = [*command.msgmerge_options, "--no-fuzzy-matching"]
                call_command(
                    command, locale=LANGUAGES, domain=domain, ignore_patterns=IGNORE,
                    no_location=True, no_obsolete=True, verbosity=0,
                )  # fmt: skip
    finally:
        os.chdir(previous)
    return locale


def compile_catalog(po: Path, mo: Path) -> None:
    subprocess.run([gettext_tool("msgfmt"), "--check", "-o", str(mo), str(po)], check=True)


def compile_all() -> list[Path]:
    compiled = []
    for language in LANGUAGES:
        for domain in DOMAINS:
            po = catalog(language, domain)
            compile_catalog(po, po.with_suffix(".mo"))
            compiled.append(po.with_suffix(".mo"))
    return compiled


def statistics(po: Path) -> str:
    """msgfmt's count of translated, fuzzy and untranslated entries."""
    result = subprocess.run(
        [gettext_tool("msgfmt"), "--statistics", "-o", os.devnull, str(po)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stderr.strip()


def missing_translations(extracted: Path, committed: Path) -> list[str]:
    """The strings of ``extracted`` (a fresh makemessages catalog) with no German in
    ``committed``, each as ``msgid (why)``: gettext's msgcmp counts untranslated and fuzzy
    entries as missing."""
    result = subprocess.run(
        [gettext_tool("msgcmp"), str(committed), str(extracted)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if result.returncode == 0:
        return []
    found = []
    for line in result.stderr.splitlines():
        match = re.match(r"^(.+?):(\d+): (?!warning)(.+)$", line)
        if match and not line.startswith("msgcmp:"):
            path, number, why = match.groups()
            found.append(f"{_msgid_at(Path(path), int(number))!r} ({why})")
    return found or [result.stderr.strip()]


def _msgid_at(po: Path, number: int) -> str:
    """The msgid of the entry around line ``number`` (1-based) of ``po``."""
    lines = po.read_text(encoding="utf-8").splitlines()
    start = min(number, len(lines)) - 1
    while start > 0 and not lines[start].startswith("msgid "):
        start -= 1
    parts = [re.sub(r'^msgid\s+"|"$', "", lines[start])]
    for line in lines[start + 1 :]:
        if not line.startswith('"'):
            break
        parts.append(line[1:-1])
    return "".join(parts).replace('\\"', '"')
