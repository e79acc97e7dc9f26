"""German is shipped complete for the prompts pages: every string marked for translation in
the prompts app, its templates and scripts, and the gateway's template endpoints has a
German translation, and the compiled catalogs are current."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

BASE = Path(settings.BASE_DIR)
LOCALE = BASE / "prompts" / "locale" / "de" / "LC_MESSAGES"
PYTHON_SOURCES = [
    *(BASE / "prompts").rglob("*.py"),
    BASE / "caipi" / "gateway" / "prompt_runs.py",
    BASE / "caipi" / "gateway" / "prompt_apis.py",
]
_UNESCAPE = {'\\"': '"', "\\n": "\n", "\\\\": "\\"}


def _unquote(parts: list[str]) -> str:
    text = "".join(parts)
    return re.sub(r'\\["n\\]', lambda m: _UNESCAPE[m.group(0)], text)


def catalog(name: str) -> dict[str, str]:
    """msgid -> msgstr of a .po file; fuzzy entries count as untranslated."""
    entries = {}
    for block in (LOCALE / name).read_text(encoding="utf-8").split("\n\n"):
        if "#, fuzzy" in block and 'msgid ""\nmsgstr ""\n"Project' not in block:
            continue
        match = re.search(r'^msgid ((?:".*"\n)+)msgstr ((?:".*"\n?)+)', block + "\n", re.M)
        if match:
            msgid = _unquote(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(1)))
            entries[msgid] = _unquote(re.findall(r'"((?:[^"\\]|\\.)*)"', match.group(2)))
    return entries


def marked_strings() -> set[str]:
    found: set[str] = set()
    for path in PYTHON_SOURCES:
        source = path.read_text()
        found |= {m for m in re.findall(r'\b_\(\s*"((?:[^"\\]|\\.)*)"\s*\)', source)}
    for path in (BASE / "prompts" / "templates").rglob("*.html"):
        found |= set(re.findall(r'\{% translate "((?:[^"\\]|\\.)*)" %\}', path.read_text()))
    for path in (BASE / "prompts" / "static").rglob("*.js"):
        found |= set(re.findall(r'\bgettext\("((?:[^"\\]|\\.)*)"\)', path.read_text()))
    return {_unquote([s]) for s in found}


def test_every_marked_string_has_a_german_translation():
    german = catalog("django.po") | catalog("djangojs.po")
    untranslated = sorted(s for s in marked_strings() if not german.get(s))
    assert untranslated == [], "run makemessages and translate: " + repr(untranslated[:10])


@pytest.mark.parametrize("name", ["django", "djangojs"])
def test_the_compiled_catalogs_are_current(name, tmp_path):
    if not shutil.which("msgfmt"):
        pytest.skip("needs gettext's msgfmt (apt-get install gettext)")
    compiled = tmp_path / f"{name}.mo"
    subprocess.run(
        ["msgfmt", "--check", "-o", str(compiled), str(LOCALE / f"{name}.po")], check=True
    )
    assert compiled.read_bytes() == (LOCALE / f"{name}.mo").read_bytes(), (
        f"recompile: msgfmt -o {LOCALE}/{name}.mo {LOCALE}/{name}.po"
    )


def test_refusals_speak_the_users_language():
    from prompts.variables import TemplateInvalid, inputs_clean, schema_parse

    specs, _ = schema_parse([{"name": "topic", "kind": "short_text", "max_length": 3}])
    with translation.override("de"), pytest.raises(TemplateInvalid) as refused:
        inputs_clean(specs, {"topic": "toolong"})
    assert refused.value.problems[0].message.startswith("Höchstens 3 Zeichen")


@pytest.mark.django_db
def test_the_pages_scripts_speak_the_language_the_lms_gave_the_user(student):
    from django.test import Client

    student.locale = "de-DE"
    student.save(update_fields=["locale"])
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(student)
    catalog_js = client.get("/jsi18n/prompts/").content.decode()
    assert "Antwort kopieren" in catalog_js or "Kontingent" in catalog_js
