"""What a launch can open inside a course: a small registry of *targets*.

A target is a string ``kind`` or ``kind:argument`` (e.g. ``course``, ``assistant``). It
travels in the ``caipi_target`` custom parameter of a placed activity (deep linking puts it
there) or in the ``target`` query parameter of the target link URI. This app registers only
``course`` (the course home, the core's page); apps above it add their own kinds without
touching the launch code, from their ``AppConfig.ready`` — the gateway registers
``assistant``::

    targets.register(TargetKind(kind="assistant", label="Course assistant",
                                resolve=assistant_url, choices=assistant_choice))
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from django.urls import reverse

from caipi.core.models import Course

logger = logging.getLogger(__name__)

DEFAULT_TARGET = "course"


@dataclass(frozen=True)
class TargetChoice:
    """One item a lecturer can place with deep linking."""

    target: str
    title: str
    description: str = ""


@dataclass(frozen=True)
class TargetKind:
    """A kind of place a launch can open.

    ``resolve(course, argument)`` returns the URL path to open, or None when the argument
    names nothing (then the course home opens). ``choices(course)`` lists what deep linking
    may place for that course.
    """

    kind: str
    label: str
    resolve: Callable[[Course, str], str | None]
    choices: Callable[[Course], list[TargetChoice]] = field(default=lambda course: [])


_KINDS: dict[str, TargetKind] = {}


def register(kind: TargetKind) -> None:
    """Add (or replace) a target kind."""
    _KINDS[kind.kind] = kind


def target_url(*, course: Course, target: str | None) -> str:
    """The URL path a launch with ``target`` opens; unknown targets open the course home."""
    kind_name, _, argument = (target or DEFAULT_TARGET).partition(":")
    kind = _KINDS.get(kind_name)
    url = kind.resolve(course, argument) if kind else None
    if url is None:
        if target and target != DEFAULT_TARGET:
            logger.warning("unknown LTI target kind=%s; opening the course home", kind_name)
        return reverse("course_home", kwargs={"course_id": course.pk})
    return url


def target_choices(*, course: Course) -> list[TargetChoice]:
    """Everything deep linking may place in ``course``, kind by kind."""
    return [choice for kind in _KINDS.values() for choice in kind.choices(course)]


register(
    TargetKind(
        kind="course",
        label="Course home",
        resolve=lambda course, _: reverse("course_home", kwargs={"course_id": course.pk}),
        choices=lambda course: [
            TargetChoice("course", "CAIPI course home", "The course's page in CAIPI.")
        ],
    )
)
