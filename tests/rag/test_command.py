"""``manage.py rag``: ingest (with --create), search --json, reindex and stats."""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from caipi.core.models import Course
from tests.rag.conftest import NOTES_DIR


def _run(*args):
    out = io.StringIO()
    call_command("rag", *args, stdout=out)
    return out.getvalue()


def test_ingest_creates_the_course_and_search_answers_in_json(db, tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    output = _run(
        "ingest", "--course", "CS50", "--create", str(NOTES_DIR), str(tmp_path / "broken.pdf")
    )
    assert "created course" in output and "3 of 4 files" in output and "broken.pdf:" in output
    course = Course.objects.get(label="CS50")
    answer = json.loads(
        _run(
            "search",
            "--course",
            str(course.pk),
            "What is k-fold cross-validation?",
            "--k",
            "2",
            "--json",
        )
    )
    assert answer["answered"] and 1 <= len(answer["passages"]) <= 2
    first = answer["passages"][0]
    assert "cross-validation" in first["text"]
    assert {"score", "document", "page", "heading"} <= set(first)


def test_reindex_and_stats_report_counts(db):
    _run("ingest", "--course", "ML101", "--create", str(NOTES_DIR))
    assert "re-embedded" in _run("reindex", "--course", "ML101")
    assert "3 documents" in _run("stats", "--course", "ML101")


def test_an_unknown_course_is_named(db):
    with pytest.raises(CommandError, match="No course 'NOPE'"):
        _run("stats", "--course", "NOPE")
