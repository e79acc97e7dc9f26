"""The demo's process logs: each start appends to its log (rotated when large), never wipes it."""

from __future__ import annotations

import sys

from caipi.demo import processes


def _run(log_path, text: str) -> None:
    child = processes._spawn([sys.executable, "-c", f"print({text!r})"], log_path=log_path)
    assert child.wait(timeout=30) == 0


def test_a_restart_appends_to_the_web_log_instead_of_overwriting_it(tmp_path):
    log_path = tmp_path / "web.log"
    _run(log_path, "first run crashed here")
    _run(log_path, "second run")

    log = log_path.read_text()
    assert "first run crashed here" in log and "second run" in log
    assert log.count("===== started ") == 2


def test_a_log_past_the_size_limit_is_rotated_once(tmp_path, monkeypatch):
    monkeypatch.setattr(processes, "LOG_ROTATE_BYTES", 10)
    log_path = tmp_path / "web.log"
    _run(log_path, "an old run with a long story")
    _run(log_path, "the new run")

    assert "an old run" in (tmp_path / "web.log.1").read_text()
    assert "an old run" not in log_path.read_text() and "the new run" in log_path.read_text()
