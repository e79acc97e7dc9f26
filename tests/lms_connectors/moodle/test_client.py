"""The Moodle web services client against a real HTTP fake answering with the responses
recorded from the Moodle 5.0.6 lab (tests/fixtures/moodle), and every failure it names."""

from __future__ import annotations

import socket
from datetime import UTC, datetime

import pytest

from lms_connectors.moodle import MoodleClient, MoodleError, MoodleFile
from lms_connectors.moodle.client import flatten

COURSE = 2


def _activity(course, name):
    return next(a for a in course.activities if a.name == name)


def test_course_contents_have_names_dates_sections_and_visibility(client):
    course = client.course(COURSE)

    assert (course.short_name, course.name) == ("LTI101", "LTI Test Course")
    assert course.start == datetime(2026, 9, 1, tzinfo=UTC)
    assert course.end == datetime(2027, 2, 4, tzinfo=UTC)
    assert [s.name for s in course.sections][1:] == ["Week 1: Foundations", "Week 2: Models"]
    assert _activity(course, "Glossary").visible
    assert not _activity(course, "Exam solutions (draft)").visible


def test_a_date_restriction_becomes_the_activitys_availability(client):
    reading = _activity(client.course(COURSE), "Week 2 reading")

    assert reading.available_from == datetime(2026, 9, 15, tzinfo=UTC)
    assert reading.available_until is None and reading.visible


def test_files_carry_their_time_modified_for_incremental_syncs(client):
    notes = _activity(client.course(COURSE), "Lecture notes week 1")

    (file,) = notes.files
    assert file.name == "week-01-notes.md" and file.modified is not None
    assert "/webservice/pluginfile.php/" in file.url


def test_a_book_lists_its_chapters_with_titles(client):
    book = _activity(client.course(COURSE), "Model handbook")

    chapters = [f.title for f in book.files if f.name == "index.html"]
    assert sorted(chapters) == ["Decision trees", "Linear models"]


def test_calendar_events_include_the_assignment_due_date(client):
    events = client.calendar_events(COURSE)

    due = [e for e in events if e.modname == "assign"]
    assert due and due[0].start == datetime(2026, 9, 21, 16, 0, tzinfo=UTC)


def test_a_file_is_downloaded_with_the_token(client, moodle):
    notes = _activity(client.course(COURSE), "Lecture notes week 1")

    data = client.download(notes.files[0])

    assert data.startswith(b"# Week 1: Foundations")
    assert len(moodle.downloads) == 1


def test_a_file_that_vanished_since_the_listing_is_named(client, moodle):
    notes = _activity(client.course(COURSE), "Lecture notes week 1")
    moodle.gone.add(notes.files[0].url.split("/webservice/pluginfile.php/")[1].split("?")[0])

    with pytest.raises(MoodleError) as refused:
        client.download(notes.files[0])

    assert refused.value.code == "moodle_file_gone"
    assert "week-01-notes.md" in refused.value.message


def test_a_file_url_off_moodles_address_is_refused_and_gets_no_token(client, moodle):
    elsewhere = MoodleFile(name="x.pdf", path="/", url="http://127.0.0.2:9/x.pdf")

    with pytest.raises(MoodleError) as refused:
        client.download(elsewhere)

    assert refused.value.code == "moodle_foreign_file"


def test_a_wrong_or_expired_token_says_the_admin_sets_a_new_one(moodle):
    wrong = MoodleClient(base_url=moodle.base_url, token="0" * 32)

    with pytest.raises(MoodleError) as refused:
        wrong.course(COURSE)

    assert refused.value.code == "moodle_token_invalid"
    assert "Admin > LTI platforms" in refused.value.message
    assert "0" * 32 not in refused.value.message


def test_a_function_missing_from_the_service_is_named(client):
    with pytest.raises(MoodleError) as refused:
        client.call("core_user_get_users_by_field")

    assert refused.value.code == "moodle_access_denied"
    assert "core_user_get_users_by_field" in refused.value.message


@pytest.mark.parametrize(
    ("mode", "code", "retryable"),
    [
        ("html", "moodle_not_json", False),
        ("ws_off", "moodle_web_services_off", False),
        ("error", "moodle_unavailable", True),
    ],
)
def test_moodle_failures_are_told_apart(client, moodle, mode, code, retryable):
    moodle.mode = mode

    with pytest.raises(MoodleError) as refused:
        client.course(COURSE)

    assert refused.value.code == code and refused.value.retryable is retryable


def test_a_moodle_that_is_down_is_retryable():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    down = MoodleClient(base_url=f"http://127.0.0.1:{port}", token="t")

    with pytest.raises(MoodleError) as refused:
        down.site_info()

    assert refused.value.code == "moodle_unavailable" and refused.value.retryable


def test_parameters_are_flattened_as_php_arrays():
    assert flatten({"events": {"courseids": [2]}, "options": {"userevents": False}}) == {
        "events[courseids][0]": "2",
        "options[userevents]": "0",
    }
