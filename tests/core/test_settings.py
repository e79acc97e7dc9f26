"""Start-up refuses bad settings with a message that names the variable and the fix."""

import os
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CAIPI_NO_BOOTSTRAP": "1", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_malformed_number_stops_start_up_naming_the_variable(tmp_path):
    result = _manage("check", CAIPI_MAX_BODY_BYTES="lots", CAIPI_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "CAIPI_MAX_BODY_BYTES='lots' is not valid: expected a whole number" in result.stderr


def test_a_database_url_of_an_unsupported_kind_is_refused(tmp_path):
    result = _manage("check", DATABASE_URL="mysql://db/caipi", CAIPI_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DATABASE_URL='mysql://db/caipi' is not valid" in result.stderr


def test_a_site_url_outside_allowed_hosts_fails_the_system_check(tmp_path):
    result = _manage("check", SITE_URL="https://caipi.example.edu", CAIPI_DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "caipi.E002" in result.stderr
    assert "Add caipi.example.edu to ALLOWED_HOSTS" in result.stderr


def test_the_configuration_reference_matches_the_settings():
    call_command("config_docs", "--check")
