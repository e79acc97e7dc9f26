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


def _settings_seen(*names: str, **env: str) -> list[str]:
    code = "from django.conf import settings; " + "; ".join(
        f"print(repr(settings.{name}))" for name in names
    )
    result = _manage("shell", "-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-len(names) :]  # after shell's own notice


def test_an_https_site_gets_hsts_and_secure_cookies(tmp_path):
    seen = _settings_seen(
        "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        SITE_URL="https://caipi.uni.example", ALLOWED_HOSTS="caipi.uni.example",
        CAIPI_BEHIND_TLS_PROXY="true", CAIPI_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert seen == ["31536000", "True", "True", "('HTTP_X_FORWARDED_PROTO', 'https')"]


def test_a_plain_http_site_sends_no_hsts_and_trusts_no_proxy_header(tmp_path):
    seen = _settings_seen(
        "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "SECURE_PROXY_SSL_HEADER",
        SITE_URL="http://127.0.0.1:8000", CAIPI_DATA_DIR=str(tmp_path),
    )  # fmt: skip
    assert seen == ["0", "False", "None"]


def test_hsts_is_sent_on_https_answers(client, settings):
    settings.SECURE_HSTS_SECONDS = 3600
    answer = client.get("/healthz", secure=True)
    assert answer["Strict-Transport-Security"] == "max-age=3600"
    assert "Strict-Transport-Security" not in client.get("/healthz")
