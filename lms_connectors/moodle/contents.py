"""Moodle's answers as CAIPI reads them: a course with its sections, activities and files,
and its calendar events. Pure parsing of the JSON Moodle 5.0 returns, no HTTP."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger(__name__)


def _time(value: Any) -> datetime | None:
    """A Moodle timestamp (seconds; 0 means "not set") as an aware datetime."""
    try:
        seconds = int(value or 0)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds > 0 else None


@dataclass(frozen=True)
class MoodleFile:
    """A file of an activity (a resource, a page's HTML, a book chapter, a folder's file)."""

    name: str
    path: str
    url: str
    size: int = 0
    mimetype: str = ""
    modified: datetime | None = None
    title: str = ""  # a book chapter's title; else empty


@dataclass(frozen=True)
class MoodleActivity:
    """An activity (course module) with what students may see of it."""

    id: int
    name: str
    modname: str
    url: str
    section: str
    visible: bool
    available_from: datetime | None = None
    available_until: datetime | None = None
    modified: datetime | None = None
    files: list[MoodleFile] = field(default_factory=list)
    dates: list[tuple[str, datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class MoodleSection:
    """A course section (topic or week) and its activities."""

    id: int
    number: int
    name: str
    visible: bool
    activities: list[MoodleActivity] = field(default_factory=list)


@dataclass(frozen=True)
class MoodleCourse:
    """A course's names, dates and contents."""

    id: int
    name: str
    short_name: str
    start: datetime | None
    end: datetime | None
    sections: list[MoodleSection]

    @property
    def activities(self) -> list[MoodleActivity]:
        return [activity for section in self.sections for activity in section.activities]


@dataclass(frozen=True)
class MoodleEvent:
    """A calendar event of the course (a due date, an opening, a course event)."""

    id: int
    name: str
    start: datetime
    duration_seconds: int
    kind: str
    modname: str = ""
    modified: datetime | None = None


def availability_dates(raw: Any) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``until`` of an availability tree's top-level AND of date conditions.

    Other trees (OR, NOT, nested, other condition types) give no dates: CAIPI then follows
    ``visible`` alone rather than guess.
    """
    try:
        tree = json.loads(raw) if isinstance(raw, str) and raw else None
    except ValueError:
        return None, None
    if not isinstance(tree, dict) or tree.get("op") != "&":
        return None, None
    start = until = None
    for condition in tree.get("c") or []:
        if not isinstance(condition, dict) or condition.get("type") != "date":
            continue
        if condition.get("d") == ">=":
            start = _time(condition.get("t"))
        elif condition.get("d") == "<":
            until = _time(condition.get("t"))
    return start, until


def _files(module: dict[str, Any]) -> list[MoodleFile]:
    files = []
    for content in module.get("contents") or []:
        if content.get("type") != "file" or not content.get("fileurl"):
            continue
        files.append(
            MoodleFile(
                name=str(content.get("filename") or ""),
                path=str(content.get("filepath") or "/"),
                url=str(content["fileurl"]),
                size=int(content.get("filesize") or 0),
                mimetype=str(content.get("mimetype") or ""),
                modified=_time(content.get("timemodified")),
                title=str(content.get("content") or "") if module.get("modname") == "book" else "",
            )
        )
    return files


def _activity(module: dict[str, Any], section: dict[str, Any], name: str) -> MoodleActivity:
    start, until = availability_dates(module.get("availability"))
    files = _files(module)
    modified = max((f.modified for f in files if f.modified), default=None)
    return MoodleActivity(
        id=int(module["id"]),
        name=str(module.get("name") or ""),
        modname=str(module.get("modname") or ""),
        url=str(module.get("url") or ""),
        section=name,
        visible=bool(module.get("visible", 1)) and bool(section.get("visible", 1)),
        available_from=start,
        available_until=until,
        modified=modified,
        files=files,
        dates=[
            (str(d.get("label") or ""), t)
            for d in module.get("dates") or []
            if (t := _time(d.get("timestamp")))
        ],
    )


def course_from_contents(*, course: dict[str, Any], contents: Any) -> MoodleCourse:
    """A ``MoodleCourse`` from ``core_course_get_courses_by_field``'s course and
    ``core_course_get_contents``' answer."""
    sections = []
    for raw in contents if isinstance(contents, list) else []:
        name = str(raw.get("name") or "")
        activities = [_activity(m, raw, name) for m in raw.get("modules") or [] if "id" in m]
        sections.append(
            MoodleSection(
                id=int(raw.get("id") or 0),
                number=int(raw.get("section") or 0),
                name=name,
                visible=bool(raw.get("visible", 1)),
                activities=activities,
            )
        )
    return MoodleCourse(
        id=int(course["id"]),
        name=str(course.get("fullname") or ""),
        short_name=str(course.get("shortname") or ""),
        start=_time(course.get("startdate")),
        end=_time(course.get("enddate")),
        sections=sections,
    )


def events_from_answer(answer: Any) -> list[MoodleEvent]:
    """``core_calendar_get_calendar_events``' events, by start time."""
    events = []
    for raw in (answer or {}).get("events") or [] if isinstance(answer, dict) else []:
        start = _time(raw.get("timestart"))
        if start is None:
            continue
        events.append(
            MoodleEvent(
                id=int(raw.get("id") or 0),
                name=str(raw.get("name") or ""),
                start=start,
                duration_seconds=int(raw.get("timeduration") or 0),
                kind=str(raw.get("eventtype") or ""),
                modname=str(raw.get("modulename") or ""),
                modified=_time(raw.get("timemodified")),
            )
        )
    return sorted(events, key=lambda event: (event.start, event.id))
