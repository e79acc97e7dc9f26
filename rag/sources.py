"""Where synced lecture notes come from: the seam an LMS connector fills.

``rag`` imports no LMS code. A ``DocumentSource`` lists a course's items (files, pages,
book chapters) with a stable id, title, link back to the LMS, section, time modified,
visibility and availability dates, and fetches an item's bytes. The layer that combines
the apps (``caipi.gateway``) registers a factory per source name (``"moodle"``) that
builds the source for a course; ``documents_sync`` (services) then syncs incrementally:
unchanged items (same time modified) are not fetched, fetched items with the same content
hash are not re-embedded, items gone from the LMS are removed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from caipi.core.models import Course


@dataclass(frozen=True)
class SourceItem:
    """One document at its source. ``filename`` decides how it is parsed (``.html`` for
    pages and book chapters); ``key`` is stable across syncs (e.g. ``moodle:file:123``)."""

    key: str
    title: str
    filename: str
    url: str = ""
    section: str = ""
    week: int | None = None
    modified: datetime | None = None
    visible: bool = True
    available_from: datetime | None = None
    available_until: datetime | None = None
    size: int | None = None


class DocumentSource(Protocol):
    """A course's documents at their origin (an LMS)."""

    name: str

    def items(self) -> Iterable[SourceItem]:
        """Every document of the course the source offers, hidden ones included."""
        ...

    def fetch(self, item: SourceItem) -> bytes:
        """The item's bytes; raises ``caipi.core.errors.ApplicationError`` on failure."""
        ...


# A factory returns None for a course its LMS does not hold (e.g. not linked to Moodle).
SourceFactory = Callable[[Course], DocumentSource | None]
_factories: dict[str, SourceFactory] = {}


def source_register(name: str, factory: SourceFactory | None) -> None:
    """Make ``factory(course)`` the builder of ``name`` sources (None unregisters)."""
    if factory is None:
        _factories.pop(name, None)
    else:
        _factories[name] = factory


def source_for(name: str, course: Course) -> DocumentSource | None:
    """The registered source ``name`` for ``course``; None when none is registered or the
    course is not in that LMS."""
    factory = _factories.get(name)
    return factory(course) if factory else None


def source_names() -> list[str]:
    return sorted(_factories)
