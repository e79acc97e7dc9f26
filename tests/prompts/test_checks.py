from __future__ import annotations

import pytest

from prompts.checks import checks_parse, checks_run, judge_messages, judge_verdict


def run(declared, answer, judge=None):
    checks, problems = checks_parse(declared)
    assert problems == []
    return [(r.kind, r.passed) for r in checks_run(checks, answer, judge=judge)]


def test_contains_and_not_contains_ignore_case_unless_asked():
    declared = [
        {"kind": "contains", "value": "Overfitting"},
        {"kind": "not_contains", "value": "sorry"},
        {"kind": "contains", "value": "Overfitting", "case_sensitive": True},
    ]
    assert run(declared, "overfitting is bad") == [
        ("contains", True), ("not_contains", True), ("contains", False),
    ]  # fmt: skip


def test_regex_length_and_json_checks():
    declared = [
        {"kind": "regex", "value": r"\d{4}"},
        {"kind": "length", "min": 5, "max": 20},
        {"kind": "json"},
    ]
    assert run(declared, '```json\n{"year": 2024}\n```') == [
        ("regex", True), ("length", False), ("json", True),
    ]  # fmt: skip
    assert run([{"kind": "json"}], "not json") == [("json", False)]


def test_a_rubric_is_judged_by_the_judge_given():
    seen = []

    def judge(rubric, answer):
        seen.append((rubric, answer))
        return True, "fine"

    assert run([{"kind": "rubric", "value": "Mentions bias"}], "bias!", judge) == [("rubric", True)]
    assert seen == [("Mentions bias", "bias!")]


def test_a_rubric_without_a_judge_fails():
    assert run([{"kind": "rubric", "value": "x"}], "y") == [("rubric", False)]


@pytest.mark.parametrize(
    "declared",
    [
        [{"kind": "regex", "value": "(a+)+$"}],
        [{"kind": "regex", "value": "("}],
        [{"kind": "length"}],
        [{"kind": "length", "min": 9, "max": 1}],
        [{"kind": "smell"}],
        [{"kind": "contains", "value": ""}],
        "not a list",
    ],
)
def test_bad_checks_are_refused_when_saved(declared):
    assert checks_parse(declared)[1]


def test_judge_replies_are_read_strictly():
    assert judge_verdict('Sure: {"pass": true, "reason": "ok"}') == (True, "ok")
    assert judge_verdict("PASS")[0] is False
    assert "<answer>" in judge_messages("r", "a")[1]["content"]
