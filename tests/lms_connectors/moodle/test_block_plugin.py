"""The block_caipi Moodle plugin: Moodle's conventions, valid PHP, and the zip to upload."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile

import pytest
from django.core.management import call_command

from lms_connectors.management.commands.moodle_plugin import SOURCE, plugin_version

PHP = shutil.which("php")


def _strings(language: str) -> set[str]:
    text = (SOURCE / "lang" / language / "block_caipi.php").read_text()
    return set(re.findall(r"\$string\['([^']+)'\]", text))


def test_the_plugin_declares_its_component_version_and_moodle_5():
    text = (SOURCE / "version.php").read_text()

    assert "$plugin->component = 'block_caipi';" in text
    assert "$plugin->requires = 2025041400;" in text  # Moodle 5.0
    release, version = plugin_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", release) and re.fullmatch(r"\d{10}", version)


def test_the_plugin_defines_both_block_capabilities():
    access = (SOURCE / "db" / "access.php").read_text()

    assert "'block/caipi:addinstance'" in access and "'block/caipi:myaddinstance'" in access


def test_english_and_german_have_the_same_strings_including_capabilities_and_privacy():
    english, german = _strings("en"), _strings("de")

    assert english == german
    assert {"pluginname", "caipi:addinstance", "caipi:myaddinstance", "privacy:metadata"} <= english


def test_the_privacy_provider_says_the_block_stores_nothing():
    provider = (SOURCE / "classes" / "privacy" / "provider.php").read_text()

    assert "implements \\core_privacy\\local\\metadata\\null_provider" in provider


def test_every_string_the_code_asks_for_exists():
    code = "".join(p.read_text() for p in SOURCE.rglob("*.php") if "lang" not in p.parts)
    asked = set(re.findall(r"get_string\('([^']+)', 'block_caipi'", code))
    asked |= set(re.findall(r"\$key = \$canmanage \? '([^']+)' : '([^']+)'", code)[0])

    assert asked <= _strings("en")


@pytest.mark.skipif(PHP is None, reason="php is not installed: php -l skipped")
@pytest.mark.parametrize("path", sorted(SOURCE.rglob("*.php")), ids=lambda p: p.name)
def test_every_php_file_passes_php_lint(path):
    result = subprocess.run([PHP, "-l", str(path)], capture_output=True, text=True, check=False)

    assert result.returncode == 0, result.stdout + result.stderr


def test_moodle_plugin_builds_the_zip_named_after_the_version(tmp_path):
    out = io.StringIO()

    call_command("moodle_plugin", "--output", str(tmp_path), stdout=out)

    release, version = plugin_version()
    target = tmp_path / f"block_caipi-{release}-{version}.zip"
    assert out.getvalue().strip() == str(target)
    names = zipfile.ZipFile(target).namelist()
    assert {"caipi/version.php", "caipi/block_caipi.php", "caipi/db/access.php"} <= set(names)
    assert "caipi/lang/de/block_caipi.php" in names
    assert all(name.startswith("caipi/") for name in names)
