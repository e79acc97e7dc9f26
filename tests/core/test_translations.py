"""German is shipped complete for the whole UI: every string marked for translation
anywhere in the project (Python, templates, scripts) has a German translation that is
neither missing nor fuzzy, and the compiled catalogs are current.

A string added without German makes this fail on purpose: the message names the command
that collects it, after which its German goes into ``locale/de/LC_MESSAGES/*.po``."""

from __future__ import annotations

import pytest

from caipi.core import messages

pytestmark = pytest.mark.skipif(
    not all(map(messages.shutil.which, ("xgettext", "msgfmt", "msgcmp"))),
    reason="needs gettext (apt-get install gettext; .ci/run installs it)",
)
HOW_TO_FIX = (
    f"run `{messages.FIX_COMMAND}`, write the German of each new empty or fuzzy entry in "
    "locale/de/LC_MESSAGES/{name}.po, then `{fix} --compile-only`"
)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory):
    """The strings the code marks today, collected into a temporary copy of the project."""
    return messages.collect(into=tmp_path_factory.mktemp("messages"))


@pytest.mark.parametrize("domain", messages.DOMAINS)
def test_every_marked_string_has_a_german_translation(extracted, domain):
    missing = messages.missing_translations(
        extracted=messages.catalog("de", domain, root=extracted),
        committed=messages.catalog("de", domain),
    )
    how = HOW_TO_FIX.format(name=domain, fix=messages.FIX_COMMAND)
    assert missing == [], f"{len(missing)} strings without German; {how}:\n" + "\n".join(
        missing[:20]
    )


@pytest.mark.parametrize("domain", messages.DOMAINS)
def test_the_compiled_catalogs_are_current(domain, tmp_path):
    po = messages.catalog("de", domain)
    compiled = tmp_path / f"{domain}.mo"
    messages.compile_catalog(po, compiled)
    assert compiled.read_bytes() == po.with_suffix(".mo").read_bytes(), (
        f"the compiled catalog is stale: run `{messages.FIX_COMMAND} --compile-only`"
    )


def test_the_check_finds_an_untranslated_string(extracted, tmp_path):
    """The check itself can fail: a catalog missing one string is reported."""
    committed = messages.catalog("de", "django").read_text(encoding="utf-8")
    broken = tmp_path / "django.po"
    broken.write_text(
        committed.replace('msgstr "Seite nicht gefunden"', 'msgstr ""'), encoding="utf-8"
    )
    missing = messages.missing_translations(
        extracted=messages.catalog("de", "django", root=extracted), committed=broken
    )
    assert len(missing) == 1 and "Page not found" in missing[0]


def test_the_check_counts_a_fuzzy_translation_as_missing(extracted, tmp_path):
    committed = messages.catalog("de", "django").read_text(encoding="utf-8")
    broken = tmp_path / "django.po"
    broken.write_text(
        committed.replace('msgid "Page not found"', '#, fuzzy\nmsgid "Page not found"'),
        encoding="utf-8",
    )
    missing = messages.missing_translations(
        extracted=messages.catalog("de", "django", root=extracted), committed=broken
    )
    assert len(missing) == 1 and "Page not found" in missing[0]
