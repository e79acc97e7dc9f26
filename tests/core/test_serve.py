"""``manage.py serve``: static files collected (the LTI icon Moodle shows), checks run,
then uvicorn with CAIPI's ASGI app."""

from __future__ import annotations

import io

from django.core.management import call_command


def test_serve_collects_the_tool_icon_runs_the_checks_and_names_the_server(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    out = io.StringIO()

    call_command("serve", "--dry-run", "--port", "8123", stdout=out)

    assert (tmp_path / "static" / "lms_connectors" / "caipi.svg").is_file()
    assert (tmp_path / "static" / "core" / "caipi.css").is_file()
    command = out.getvalue().splitlines()[-1]
    assert "-m uvicorn caipi.asgi:application" in command and "--port 8123" in command


def test_serve_runs_one_worker_per_core_by_default(settings, tmp_path, monkeypatch):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.WEB_WORKERS = 0
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    out = io.StringIO()

    call_command("serve", "--dry-run", stdout=out)

    assert "--workers 6" in out.getvalue().splitlines()[-1]


def test_serve_runs_the_configured_worker_count_and_the_flag_wins(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path / "static"
    settings.WEB_WORKERS = 3
    configured, flagged = io.StringIO(), io.StringIO()

    call_command("serve", "--dry-run", stdout=configured)
    call_command("serve", "--dry-run", "--workers", "2", stdout=flagged)

    assert "--workers 3" in configured.getvalue().splitlines()[-1]
    assert "--workers 2" in flagged.getvalue().splitlines()[-1]
