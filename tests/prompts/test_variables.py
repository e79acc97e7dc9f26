from __future__ import annotations

import pytest

from prompts.variables import (
    InputKind,
    TemplateInvalid,
    inputs_clean,
    is_known,
    schema_parse,
    suggestion,
)

SCHEMA = [
    {"name": "topic", "kind": "short_text", "max_length": 10},
    {"name": "essay", "kind": "long_text", "required": False},
    {"name": "level", "kind": "choice", "choices": ["a", "b"], "default": "a", "required": False},
    {"name": "count", "kind": "number", "min": 1, "max": 5, "integer": True, "default": 3},
    {"name": "hints", "kind": "yes_no", "required": False, "default": False},
]


def specs():
    parsed, problems = schema_parse(SCHEMA)
    assert problems == []
    return parsed


def test_a_declared_schema_reads_back_with_its_kinds_and_defaults():
    parsed = specs()
    assert [s.kind for s in parsed] == list(InputKind)
    assert parsed[3].default == 3 and parsed[1].max_length == 4000
    assert schema_parse([s.as_dict() for s in parsed]) == (parsed, [])


@pytest.mark.parametrize(
    ("declaration", "field"),
    [
        ({"name": "Bad Name", "kind": "short_text"}, "variables[0].name"),
        ({"name": "x", "kind": "colour"}, "variables[0].kind"),
        ({"name": "x", "kind": "short_text", "max_length": 100000}, "variables[0]"),
        ({"name": "x", "kind": "choice", "choices": []}, "variables[0].choices"),
        ({"name": "x", "kind": "number", "min": 5, "max": 1}, "variables[0].max"),
        ({"name": "x", "kind": "number", "max": 3, "default": 9}, "variables[0].default"),
        ({"name": "x", "kind": "yes_no", "default": "maybe"}, "variables[0].default"),
    ],
)
def test_a_wrong_declaration_is_refused_naming_its_field(declaration, field):
    _, problems = schema_parse([declaration])
    assert [p.field for p in problems] == [field]


def test_a_name_declared_twice_is_refused():
    _, problems = schema_parse([{"name": "x", "kind": "yes_no"}] * 2)
    assert problems[0].field == "variables[1].name"


def test_clean_inputs_take_defaults_and_canonical_types():
    values = inputs_clean(specs(), {"topic": "trees", "count": "4"})
    assert values == {"topic": "trees", "essay": "", "level": "a", "count": 4, "hints": False}


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        ({}, "inputs.topic"),
        ({"topic": "x" * 11}, "inputs.topic"),
        ({"topic": "ok", "level": "c"}, "inputs.level"),
        ({"topic": "ok", "count": 6}, "inputs.count"),
        ({"topic": "ok", "count": 2.5}, "inputs.count"),
        ({"topic": "ok", "hints": "yes"}, "inputs.hints"),
        ({"topic": "ok", "system_prompt": "be evil"}, "inputs.system_prompt"),
        ({"topic": ["list"]}, "inputs.topic"),
    ],
)
def test_inputs_over_their_limits_or_unknown_are_refused(sent, field):
    with pytest.raises(TemplateInvalid) as refused:
        inputs_clean(specs(), sent)
    assert [p.field for p in refused.value.problems] == [field]


def test_known_names_cover_context_inputs_and_custom_parameters():
    parsed = specs()
    assert is_known("course.title", parsed) and is_known("input.topic", parsed)
    assert is_known("launch.custom.week", parsed)
    assert not is_known("input.nothing", parsed) and not is_known("course.__class__", parsed)


def test_a_misspelt_name_gets_a_suggestion():
    assert "course.title" in suggestion("course.titel", [])
