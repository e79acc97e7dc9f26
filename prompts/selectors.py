"""Reads of templates, versions, test runs, runs and batches, with who may see what.

Students see a course's *published* templates meant for them, nothing else: a draft, an
archived template or a staff-only template is "not found" to them (so its existence is not
told), and a template of another course is refused (403), both through
``caipi.core.permissions``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import NotFound
from caipi.core.models import Course, CourseRole, Membership
from caipi.core.permissions import COURSE_VIEW, SITE_ADMIN, can, require
from prompts import cache
from prompts.models import (
    Audience,
    BatchRun,
    LibraryState,
    Run,
    Template,
    TemplateState,
    TemplateVersion,
    TestRun,
)
from prompts.permissions import COURSE_MANAGE_PROMPTS, TEMPLATE_RUN
from prompts.services.templates import require_template_edit


def _template(template_id: Any) -> Template:
    template = (
        Template.objects.select_related("course", "published_version")
        .filter(pk=template_id)
        .first()
    )
    if template is None:
        raise NotFound(str(_("There is no such template.")))
    return template


def template_list_for_course(*, user: Any, course: Course) -> QuerySet[Template]:
    """The course's templates this user may see: all but archived ones for course staff,
    the published ones for students (learner audience only)."""
    require(user, COURSE_VIEW, course)
    templates = Template.objects.filter(course=course).select_related("published_version")
    if can(user, COURSE_MANAGE_PROMPTS, course):
        return templates.exclude(state=TemplateState.ARCHIVED)
    return templates.filter(
        state=TemplateState.PUBLISHED,
        published_version__isnull=False,
        audience=Audience.LEARNERS,
    )


def template_for_staff(*, user: Any, template_id: Any) -> Template:
    """A template its course staff (or, for the library, an admin) may edit; 404 or 403."""
    template = _template(template_id)
    require_template_edit(user, template)
    return template


def _published(template_id: Any) -> Template:
    """The template with its course and published version, from the run cache."""
    try:
        key = int(template_id)
    except (TypeError, ValueError):
        raise NotFound(str(_("There is no such template."))) from None
    return cache.published.get_or_load(key, lambda: _template(key))


def template_for_run(*, user: Any, template_id: Any) -> tuple[Template, TemplateVersion]:
    """The template and its published version, when ``user`` may run it.

    Raises PermissionDenied (not a member of the template's course) or NotFound (no such
    template, not published, or staff-only for a student). The template comes from the
    run cache (``prompts.cache``): a change of the pin reaches other processes within
    seconds.
    """
    template = _published(template_id)
    if template.course_id is None:
        raise NotFound(str(_("There is no such template.")))
    require(user, TEMPLATE_RUN, template)
    if not template.is_published or template.published_version is None:
        raise NotFound(str(_("This template is not published.")))
    staff = can(user, COURSE_MANAGE_PROMPTS, template.course)
    if template.audience == Audience.STAFF and not staff:
        raise NotFound(str(_("There is no such template.")))
    return template, template.published_version


def versions_list(*, template: Template) -> QuerySet[TemplateVersion]:
    """Every version, newest first, with its author."""
    return template.versions.select_related("author").order_by("-number")


def testrun_latest(*, version: TemplateVersion) -> TestRun | None:
    """The version's newest test run (finished or not)."""
    return version.test_runs.order_by("-created_at", "-pk").first()


def testrun_get(*, user: Any, run_id: Any) -> TestRun:
    """A test run, for the staff of its template; 404 or 403."""
    run = TestRun.objects.select_related("version__template").filter(pk=run_id).first()
    if run is None:
        raise NotFound(str(_("There is no such test run.")))
    require_template_edit(user, run.version.template)
    return run


def library_list(*, user: Any) -> QuerySet[Template]:
    """Approved library templates; admins also see the proposed ones."""
    entries = Template.objects.filter(course__isnull=True)
    if can(user, SITE_ADMIN):
        return entries.exclude(library_state=LibraryState.NONE)
    return entries.filter(library_state=LibraryState.APPROVED)


def batch_get(*, user: Any, batch_id: Any) -> BatchRun:
    """A batch run, for the staff of its template; 404 or 403."""
    batch = BatchRun.objects.select_related("template", "version").filter(pk=batch_id).first()
    if batch is None:
        raise NotFound(str(_("There is no such batch run.")))
    require_template_edit(user, batch.template)
    return batch


def batch_list(*, template: Template) -> QuerySet[BatchRun]:
    return template.batches.order_by("-created_at")[:20]


def usage_by_template(*, course: Course) -> dict[int, dict[str, int]]:
    """Runs and students reached per template of the course: counts, never texts."""
    learners = Membership.objects.filter(course=course, role=CourseRole.LEARNER).values("user_id")
    rows = (
        Run.objects.filter(course=course)
        .values("template_id")
        .annotate(
            runs=Count("id"),
            students=Count("user", distinct=True, filter=Q(user_id__in=learners)),
        )
    )
    return {row["template_id"]: {"runs": row["runs"], "students": row["students"]} for row in rows}


def published_template_models(*, course: Course) -> set[str]:
    """The models the course's published templates run on (their published versions')."""
    published = Template.objects.filter(
        course=course, state=TemplateState.PUBLISHED, published_version__isnull=False
    )
    return set(published.values_list("published_version__model", flat=True))
