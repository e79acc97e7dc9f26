"""Moodle's web services as what ``rag`` and ``prompts`` ask for (they import no LMS code):

* a lecture-note source (``rag.sources``, name ``"moodle"``): the course's files, pages
  and book chapters with Moodle's visibility, availability dates and time modified, so
  ``rag`` re-fetches only what changed and students retrieve only what they may see;
* a course-data provider for prompt templates (``prompts.registry``, name ``"moodle"``):
  the names of the visible sections and activities and the course's start and end dates.

Both reach Moodle only through ``lms_connectors.moodle``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from django.core.cache import cache

from caipi.core.models import Course
from lms_connectors.models import LtiContext
from lms_connectors.moodle import MoodleActivity, MoodleClient, MoodleError, MoodleFile
from lms_connectors.moodle.client import client_for_context
from prompts import registry
from rag.sources import SourceItem, source_register

logger = logging.getLogger(__name__)

# Activities whose files are lecture notes; a page's or book's embedded images are not.
_NOTE_MODULES = {"resource", "folder", "page", "book"}
COURSE_DATA_SECONDS = 300
COURSE_DATA_FAILED_SECONDS = 60


def _context(course: Course) -> LtiContext:
    context = LtiContext.objects.filter(course=course).select_related("platform").first()
    if context is None:
        raise MoodleError(
            "moodle_no_course", "This course is not linked to a Moodle course (no LTI launch yet)."
        )
    return context


class MoodleDocumentSource:
    """A course's lecture notes in Moodle (``rag.sources.DocumentSource``)."""

    name = "moodle"

    def __init__(self, course: Course) -> None:
        self.course = course
        self._files: dict[str, MoodleFile] = {}
        self._client: MoodleClient | None = None

    def _moodle(self) -> tuple[MoodleClient, str]:
        context = _context(self.course)
        self._client = self._client or client_for_context(context)
        return self._client, context.context_id

    def items(self) -> Iterator[SourceItem]:
        client, course_id = self._moodle()
        for activity in client.course(course_id).activities:
            if activity.modname in _NOTE_MODULES:
                yield from self._activity_items(activity)

    def _activity_items(self, activity: MoodleActivity) -> Iterator[SourceItem]:
        for file in activity.files:
            is_html = activity.modname in ("page", "book")
            if is_html and file.name != "index.html":
                continue  # embedded images of pages and chapters
            key = f"moodle:{activity.id}:{file.path}{file.name}"
            self._files[key] = file
            title = file.title or activity.name
            yield SourceItem(
                key=key,
                title=title if activity.modname != "folder" else f"{activity.name}: {file.name}",
                filename=f"{title}.html" if is_html else file.name,
                url=activity.url,
                section=activity.section,
                modified=file.modified,
                visible=activity.visible,
                available_from=activity.available_from,
                available_until=activity.available_until,
                size=file.size or None,
            )

    def fetch(self, item: SourceItem) -> bytes:
        file = self._files.get(item.key)
        if file is None:  # fetch without a listing first: list now
            list(self.items())
            file = self._files.get(item.key)
        if file is None:
            raise MoodleError("moodle_file_gone", f"“{item.title}” is no longer in Moodle.")
        client, _ = self._moodle()
        return client.download(file)


def moodle_source(course: Course) -> MoodleDocumentSource | None:
    """The course's Moodle source, or None when the course is not linked to an LMS course."""
    if not LtiContext.objects.filter(course=course).exists():
        return None
    return MoodleDocumentSource(course)


def course_data(*, course: Course, **_: Any) -> dict[str, Any]:
    """Prompt context: visible section and activity names and the course dates, from Moodle
    (cached five minutes; a failure is remembered a minute, so runs do not wait on it)."""
    key = f"caipi-moodle-course-data:{course.pk}"
    cached = cache.get(key)
    if cached is not None:
        return dict(cached)
    try:
        client, course_id = MoodleDocumentSource(course)._moodle()
        moodle = client.course(course_id)
    except MoodleError as exc:
        logger.info("moodle course data unavailable course=%s code=%s", course.pk, exc.code)
        cache.set(key, {}, COURSE_DATA_FAILED_SECONDS)
        return {}
    sections = [s for s in moodle.sections if s.visible]
    data = {
        "course": {
            "sections": [s.name for s in sections if s.name],
            "activities": [a.name for s in sections for a in s.activities if a.visible],
            "start": moodle.start.date().isoformat() if moodle.start else "",
            "end": moodle.end.date().isoformat() if moodle.end else "",
        }
    }
    cache.set(key, data, COURSE_DATA_SECONDS)
    return data


def connect() -> None:
    """Register the source and the provider (GatewayConfig.ready, after the LMS provider,
    so Moodle's activity names win over the titles of placed CAIPI activities)."""
    source_register("moodle", moodle_source)
    registry.register_context_provider("moodle", course_data)
