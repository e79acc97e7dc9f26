"""What the core's pages link to in other apps: course-page sections and top-bar links.

The core sits below every app, so its templates cannot name the apps' URLs. Instead each
app registers what it adds, from its ``AppConfig.ready``::

    navigation.register_course_section(CourseSection(
        key="usage", title="Course usage", order=20,
        description="Calls and tokens by day, model and role, with the course budget.",
        action=COURSE_VIEW_USAGE,
        url=lambda course: reverse("governance:usage_course", args=[course.pk]),
    ))

A course's home page shows the sections whose ``action`` the visitor may do there (asked
through ``caipi.core.permissions``), in ``order``; the top bar shows the links whose
``action`` the signed-in user may do (no action: every signed-in user).

Some cards depend on the course's content (one card per published prompt template): an
app registers ``CourseCards`` whose ``cards(user, course)`` returns them, already limited to
what that user may open (the app asks ``caipi.core.permissions`` itself).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

from caipi.core.models import Course
from caipi.core.permissions import can

# Titles and descriptions are registered at start-up, before any language is active: apps
# give them as gettext_lazy, and they are put into words when a page shows them.
Text = str | Promise


@dataclass(frozen=True)
class CourseSection:
    """One card on a course's home page, offered by an app."""

    key: str
    title: Text
    description: Text
    action: str
    url: Callable[[Course], str]
    order: int = 100


@dataclass(frozen=True)
class TopLink:
    """One link in every page's top bar, offered by an app."""

    key: str
    title: Text
    url: Callable[[], str]
    action: str | None = None
    order: int = 100


@dataclass(frozen=True)
class Shown:
    """A section or link as a page shows it: its title, text and URL."""

    title: str
    url: str
    description: str = ""


@dataclass(frozen=True)
class CourseCards:
    """Cards on a course's home page that depend on the course's content, offered by an app."""

    key: str
    cards: Callable[[Any, Course], list[Shown]]
    order: int = 100


_SECTIONS: dict[str, CourseSection] = {}
_CARDS: dict[str, CourseCards] = {}
_LINKS: dict[str, TopLink] = {}


def register_course_section(section: CourseSection) -> None:
    """Add (or replace, by ``key``) a section of the course home page."""
    _SECTIONS[section.key] = section


def register_course_cards(cards: CourseCards) -> None:
    """Add (or replace, by ``key``) a provider of content cards for course home pages."""
    _CARDS[cards.key] = cards


def register_top_link(link: TopLink) -> None:
    """Add (or replace, by ``key``) a link of the top bar."""
    _LINKS[link.key] = link


def course_sections(*, user: Any, course: Course) -> list[Shown]:
    """The sections of ``course``'s home page that ``user`` may open, in order."""
    shown: list[tuple[int, str, list[Shown]]] = [
        (
            s.order,
            s.key,
            [Shown(title=str(s.title), url=s.url(course), description=str(s.description))],
        )
        for s in _SECTIONS.values()
        if can(user, s.action, course)
    ]
    shown += [(c.order, c.key, c.cards(user, course)) for c in _CARDS.values()]
    return [card for _order, _key, cards in sorted(shown, key=lambda x: x[:2]) for card in cards]


def top_links(*, user: Any) -> list[Shown]:
    """The top-bar links ``user`` may follow, in order (none for anonymous visitors)."""
    if not getattr(user, "is_authenticated", False):
        return []
    ordered = sorted(_LINKS.values(), key=lambda link: (link.order, link.key))
    return [
        Shown(title=str(link.title), url=link.url())
        for link in ordered
        if link.action is None or can(user, link.action)
    ]


def navigation(request: Any) -> dict[str, Any]:
    """Template context processor: ``top_links`` for the top bar of every page."""
    return {"top_links": top_links(user=getattr(request, "user", None))}
