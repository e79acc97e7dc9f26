"""Templates moving between places: copy to another course, the site library, placements
copied with their course, and JSON export/import."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import ApplicationError, PermissionDenied
from caipi.core.models import Course
from caipi.core.permissions import SITE_ADMIN, can, require
from prompts.models import (
    CONTENT_FIELDS,
    LibraryState,
    Template,
    TemplateState,
    TemplateVersion,
    TestCase,
)
from prompts.permissions import COURSE_MANAGE_PROMPTS, TEMPLATE_EDIT
from prompts.services.templates import require_template_edit, template_create, version_save

EXPORT_FORMAT = "caipi-prompt-template"
EXPORT_FORMAT_VERSION = 1
MAX_IMPORT_VERSIONS = 50


def _tests_of(version: TemplateVersion) -> list[dict[str, Any]]:
    return [
        {"name": case.name, "inputs": case.inputs, "checks": case.checks}
        for case in version.tests.all()
    ]


def version_content(version: TemplateVersion) -> dict[str, Any]:
    """A version's content with its test cases, as ``version_save`` takes it."""
    return {**version.content(), "tests": _tests_of(version)}


def _latest(template: Template) -> TemplateVersion:
    return template.versions.order_by("-number").first()  # type: ignore[return-value]


def _may_read(actor: Any, template: Template) -> bool:
    if template.course_id is None:
        return template.library_state == LibraryState.APPROVED or can(actor, SITE_ADMIN)
    return can(actor, TEMPLATE_EDIT, template)


def _copy(*, actor: Any, template: Template, course: Course | None, note: str) -> Template:
    version = template.published_version or _latest(template)
    copy = template_create(
        actor=actor,
        course=course,
        name=template.name,
        description=template.description,
        audience=template.audience,
        content=version_content(version),
        note=note,
    )
    copy.copied_from = template
    copy.save(update_fields=["copied_from"])
    return copy


@transaction.atomic
def template_copy(*, actor: Any, template: Template, course: Course) -> Template:
    """A draft copy of the template (its published version, else its latest) in ``course``.

    The actor must be able to read the source (teach its course; any teacher for an
    approved library template) and must manage prompts in ``course``.
    """
    if not _may_read(actor, template):
        raise PermissionDenied(str(_("You may not copy this template.")))
    require(actor, COURSE_MANAGE_PROMPTS, course)
    note = _("Copied from “%(name)s”") % {"name": template.name}
    return _copy(actor=actor, template=template, course=course, note=str(note))


@transaction.atomic
def library_propose(*, actor: Any, template: Template) -> Template:
    """Offer a copy of a course template to the site library (an admin approves it)."""
    require_template_edit(actor, template)
    version = template.published_version or _latest(template)
    entry = Template.objects.create(
        course=None,
        name=template.name,
        description=template.description,
        audience=template.audience,
        library_state=LibraryState.PROPOSED,
        copied_from=template,
        created_by=actor,
    )
    _version_copy(version, entry, author=actor, note=str(_("Proposed for the library")))
    return entry


def _version_copy(
    version: TemplateVersion, template: Template, *, author: Any, note: str
) -> TemplateVersion:
    """Copy a version (already valid) to another template without re-checking its model
    against a course: library entries and placement copies keep exactly what was tested."""
    latest = template.versions.order_by("-number").values_list("number", flat=True).first()
    number = (latest or 0) + 1
    copy = TemplateVersion.objects.create(
        template=template,
        number=number,
        author=author,
        note=note,
        **{name: getattr(version, name) for name in CONTENT_FIELDS},
    )
    TestCase.objects.bulk_create(
        TestCase(version=copy, position=c.position, name=c.name, inputs=c.inputs, checks=c.checks)
        for c in version.tests.all()
    )
    return copy


@transaction.atomic
def library_decide(*, actor: Any, template: Template, approve: bool) -> Template | None:
    """An admin approves a proposed library template, or removes it (returns None)."""
    require(actor, SITE_ADMIN)
    if template.course_id is not None:
        raise ApplicationError(str(_("Only library templates are approved.")))
    if not approve:
        template.delete()
        return None
    template.library_state = LibraryState.APPROVED
    template.save(update_fields=["library_state", "updated_at"])
    return template


@transaction.atomic
def template_adopt(*, source: Template, course: Course) -> Template:
    """The course's copy of a placed template from another course, made on first launch.

    When an LMS copies a course, its placed activities still name the old course's template
    (``prompt:<id>``); the pin travels with the placement: the new course gets the source's
    published version, published. No actor: the LMS-signed placement is the authority.
    Returns an existing adopted copy when there is one. Raises ApplicationError when the
    source has nothing published.
    """
    existing = Template.objects.filter(course=course, copied_from=source).first()
    if existing is not None:
        return existing
    if source.published_version is None:
        raise ApplicationError(str(_("The placed template is not published.")))
    copy = Template.objects.create(
        course=course,
        name=source.name,
        description=source.description,
        audience=source.audience,
        copied_from=source,
    )
    note = str(_("Copied with the course"))
    version = _version_copy(source.published_version, copy, author=None, note=note)
    copy.published_version = version
    copy.state = TemplateState.PUBLISHED
    copy.save(update_fields=["published_version", "state"])
    return copy


def template_export(*, actor: Any, template: Template) -> dict[str, Any]:
    """The template and all its versions (with test cases) as JSON-ready data."""
    if not _may_read(actor, template):
        raise PermissionDenied(str(_("You may not export this template.")))
    versions = template.versions.order_by("number")
    return {
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_FORMAT_VERSION,
        "name": template.name,
        "description": template.description,
        "audience": template.audience,
        "published_number": template.published_version.number
        if template.published_version
        else None,
        "versions": [
            {"number": v.number, "note": v.note, "content": version_content(v)} for v in versions
        ],
    }


@transaction.atomic
def template_import(*, actor: Any, course: Course, data: Any) -> Template:
    """A new draft template in ``course`` from exported data; every version is checked as
    if saved by ``actor`` (so a model the course may not use is refused). Nothing is
    published. Raises ApplicationError (not an export), TemplateInvalid, PermissionDenied.
    """
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ApplicationError(str(_("This is not a CAIPI template export.")))
    if data.get("format_version") != EXPORT_FORMAT_VERSION:
        raise ApplicationError(str(_("This export's format version is not supported.")))
    versions = data.get("versions")
    if not isinstance(versions, list) or not 0 < len(versions) <= MAX_IMPORT_VERSIONS:
        limit = _("An export holds 1 to %(n)s versions.") % {"n": MAX_IMPORT_VERSIONS}
        raise ApplicationError(str(limit))
    if not all(isinstance(v, dict) and isinstance(v.get("content"), dict) for v in versions):
        raise ApplicationError(str(_("Each version needs its content.")))
    first, *rest = versions
    template = template_create(
        actor=actor,
        course=course,
        name=data.get("name"),  # type: ignore[arg-type]
        description=data.get("description") or "",
        audience=data.get("audience") or "learners",
        content=first["content"],
        note=str(first.get("note") or "")[:480] or str(_("Imported")),
    )
    for version in rest:
        note = str(version.get("note") or "")[:480] or str(_("Imported"))
        version_save(actor=actor, template=template, content=version["content"], note=note)
    return template
