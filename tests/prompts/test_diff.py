from __future__ import annotations

from prompts.diff import side_by_side, versions_diff


def test_side_by_side_pairs_changed_lines_and_shows_additions():
    rows = side_by_side("a\nb\nc", "a\nB\nc\nd")
    assert [(r.left, r.right, r.change) for r in rows] == [
        ("a", "a", "same"), ("b", "B", "changed"), ("c", "c", "same"), ("", "d", "added"),
    ]  # fmt: skip


def test_versions_diff_lists_only_changed_settings():
    diff = versions_diff(
        {"user_prompt": "x", "model": "m", "params": {}},
        {"user_prompt": "y", "model": "n", "params": {}},
    )
    assert diff["values"] == {"model": {"left": "m", "right": "n"}}
    assert diff["texts"]["user_prompt"][0]["change"] == "changed"
