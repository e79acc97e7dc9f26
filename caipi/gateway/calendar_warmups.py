"""Warm-ups from the Moodle course calendar: a model a course uses is awake before its
students arrive.

For every course linked to a Moodle course (an ``LtiContext`` whose LMS has a web service
token), a refresh (Celery beat, every DEPLOY_WARMUP_REFRESH_SECONDS) reads the course's
calendar through ``lms_connectors.moodle`` — lectures and other course events, assignment
due dates, quiz openings and closings — and stores one warm window per event and model:
from DEPLOY_WARMUP_LEAD_MINUTES before the event's start to its end (its due time for an
event without a duration). The reconciler keeps one instance of the model up inside such a
window, as inside the deployment's own ``warm_windows``.

The models a course uses: those its published prompt templates run on, those the learner
role is limited to (the course assistant's models, when the admin limited them), and those
its members called in the last ``USED_DAYS`` days. Only models with a deployment count:
the others are not CAIPI's to start.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from caipi.core.models import Course, CourseRole
from caipi.governance.selectors import models_used_in_course, role_models
from deploy.models import Model
from deploy.services import CourseWarmUp, calendar_windows_replace
from lms_connectors.models import LtiContext
from lms_connectors.moodle import MoodleError, MoodleEvent, client_for_context
from prompts.selectors import published_template_models

logger = logging.getLogger(__name__)

USED_DAYS = 14
# Events this far ahead are read; later ones come with a later refresh.
HORIZON = dt.timedelta(days=14)


@dataclass(frozen=True)
class RefreshReport:
    courses: int = 0
    windows: int = 0
    failed: tuple[str, ...] = ()


def course_models(*, course: Course) -> list[Model]:
    """The deployed models the course uses (see the module doc), by name."""
    names = published_template_models(course=course) | models_used_in_course(
        course=course, days=USED_DAYS
    )
    names |= set(role_models(role=CourseRole.LEARNER.value) or ())
    return list(
        Model.objects.filter(name__in=names, enabled=True, deployment__isnull=False).order_by(
            "name"
        )
    )


def warm_span(event: MoodleEvent, *, lead: dt.timedelta) -> tuple[dt.datetime, dt.datetime]:
    """From ``lead`` before the event's start to its end (its start when it has no
    duration, as a due date)."""
    return event.start - lead, event.start + dt.timedelta(seconds=max(0, event.duration_seconds))


def calendar_warmups_refresh(*, course: Course, now: dt.datetime | None = None) -> int:
    """Read the course's Moodle calendar and replace its warm windows; return how many.
    Raises MoodleError when the course is not linked or Moodle refuses."""
    now = now or timezone.now()
    context = LtiContext.objects.filter(course=course).select_related("platform").first()
    if context is None:
        raise MoodleError("moodle_no_course", "This course is not linked to a Moodle course.")
    events = client_for_context(context).calendar_events(
        context.context_id, since=now - dt.timedelta(days=1)
    )
    lead = dt.timedelta(minutes=settings.DEPLOY_WARMUP_LEAD_MINUTES)
    models = course_models(course=course)
    warm_ups = []
    for event in events:
        starts, ends = warm_span(event, lead=lead)
        if ends <= now or starts > now + HORIZON:
            continue
        for model in models:
            warm_ups.append(
                CourseWarmUp(model, starts, ends, event.id, event.name, event.kind or event.modname)
            )
    return calendar_windows_replace(course=course, warm_ups=warm_ups)


def calendar_warmups_refresh_all(*, now: dt.datetime | None = None) -> RefreshReport:
    """Refresh every course linked to an LMS; a course whose Moodle fails keeps its
    windows and is named in the report (and the log)."""
    linked = LtiContext.objects.filter(course__isnull=False).values("course_id")
    courses, windows, failed = 0, 0, []
    for course in Course.objects.filter(pk__in=linked).order_by("pk"):
        try:
            windows += calendar_warmups_refresh(course=course, now=now)
            courses += 1
        except MoodleError as exc:
            failed.append(course.title)
            logger.warning("calendar warm-ups of %s not refreshed: %s", course.title, exc)
    return RefreshReport(courses, windows, tuple(failed))
