"""``python -m deploy.benchmark.where``: shares of a py-spy raw profile, by part and function."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.benchmark.where import category, main, own_function, parse, shares

MAIN = "_run_module_as_main (<frozen runpy>:198);<module> (uvicorn/__main__.py:4)"
LOOP = f"{MAIN};Runner.run (asyncio/runners.py:118)"
QUOTA = f"{LOOP};_script (caipi/governance/services/quotas.py:90);execute (redis/client.py:5)"
RELAY = f"{LOOP};_Relay.take (caipi/gateway/relay.py:150)"
FLUSH = (
    "Thread._bootstrap (threading.py:1002);Thread.run (threading.py:982);"
    "_flush_forever (caipi/governance/services/usage.py:72);"
    "_write (caipi/governance/services/usage.py:140)"
)
IMPORT = f"{MAIN};_find_and_load (<frozen importlib._bootstrap>:1);<module> (caipi/asgi.py:1)"


def test_the_event_loop_is_split_by_the_innermost_package_and_threads_by_their_target() -> None:
    assert category(QUOTA.split(";")) == "redis-py"
    assert category(RELAY.split(";")) == "CAIPI code"
    assert category(LOOP.split(";")).startswith("event loop")
    assert category(FLUSH.split(";")) == "thread: _flush_forever"


def test_own_functions_are_counted_inclusively_at_the_innermost_caipi_frame() -> None:
    assert own_function(QUOTA.split(";")) == "_script (governance/services/quotas.py)"
    assert own_function(LOOP.split(";")) is None


def test_start_up_samples_are_left_out_and_shares_add_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [f"{QUOTA} 30\n", f"{RELAY} 10\n", f"{FLUSH} 60\n", f"{IMPORT} 500\n", "garbage\n"]
    stacks = parse(lines)
    total, parts, own = shares(stacks)
    assert total == 100
    assert (parts["redis-py"], parts["thread: _flush_forever"]) == (30, 60)
    assert own["_write (governance/services/usage.py)"] == 60
    profile = tmp_path / "raw.txt"
    profile.write_text("".join(lines))
    main([str(profile)])
    out = capsys.readouterr().out
    assert "100 samples" in out and " 60.0%  thread: _flush_forever" in out
