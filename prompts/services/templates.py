"""Writes of templates and versions: create, save a version, publish, unpublish, roll back,
archive. Every function checks the actor's permission itself (``caipi.core.permissions``),
so pages, the API and commands cannot forget it."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext_lazy as _

from caipi.core.audit import audit
from caipi.core.errors import ApplicationError, NotFound
from caipi.core.models import Course
from caipi.core.permissions import SITE_ADMIN, require
from prompts import cache
from prompts.models import (
    Audience,
    PromptSettings,
    Template,
    TemplateState,
    TemplateVersion,
    TestCase,
    TestRun,
)
from prompts.permissions import COURSE_MANAGE_PROMPTS, TEMPLATE_EDIT
from prompts.services.validation import content_check


class PublishRefused(ApplicationError):
    """Publishing was refused (no green test run while the site requires one, wrong version)."""

    status = 409
    code = "publish_refused"


def require_template_edit(actor: Any, template: Template) -> None:
    """Raise ``PermissionDenied`` unless ``actor`` may change ``template``: course staff for
    course templates, site admins for the site library."""
    if template.course_id is None:
        require(actor, SITE_ADMIN)
    else:
        require(actor, TEMPLATE_EDIT, template)


def _meta(name: Any, description: Any, audience: Any) -> dict[str, Any]:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise ApplicationError(str(_("Give the template a name (at most 200 characters).")))
    if audience not in Audience.values:
        raise ApplicationError(str(_("Pick who sees the template.")))
    description = str(description or "")[:5000]
    return {"name": name.strip(), "description": description, "audience": audience}


def _tests_create(version: TemplateVersion, tests: list[dict[str, Any]]) -> None:
    TestCase.objects.bulk_create(
        TestCase(
            version=version,
            position=position,
            name=test["name"],
            inputs=test.get("inputs") or {},
            checks=test.get("checks") or [],
        )
        for position, test in enumerate(tests)
    )


@transaction.atomic
def template_create(
    *,
    actor: Any,
    course: Course | None,
    name: str,
    description: str = "",
    audience: str = Audience.LEARNERS,
    content: dict[str, Any],
    note: str = "",
) -> Template:
    """A new draft template with its first version. Raises PermissionDenied (not staff of
    ``course``; not an admin for the library), TemplateInvalid (content) or
    ApplicationError (name, audience)."""
    if course is None:
        require(actor, SITE_ADMIN)
    else:
        require(actor, COURSE_MANAGE_PROMPTS, course)
    template = Template.objects.create(
        course=course, created_by=actor, **_meta(name, description, audience)
    )
    version_save(actor=actor, template=template, content=content, note=note or "Created")
    return template


@transaction.atomic
def template_update(
    *, actor: Any, template: Template, name: str, description: str, audience: str
) -> Template:
    """Change the name, description and audience (not versioned: they do not change what a
    run sends to the model)."""
    require_template_edit(actor, template)
    for field, value in _meta(name, description, audience).items():
        setattr(template, field, value)
    template.save(update_fields=["name", "description", "audience", "updated_at"])
    transaction.on_commit(lambda: cache.published.forget(template.pk))
    return template


@transaction.atomic
def version_save(
    *, actor: Any, template: Template, content: dict[str, Any], note: str = ""
) -> TemplateVersion:
    """Save ``content`` as the template's next version (with its test cases).

    Content keys: engine, system_prompt, user_prompt, variables, model, params, use_notes,
    notes_count, starters, tests. Raises PermissionDenied or TemplateInvalid (listing every
    problem with its place). Locks the template row so two saves get distinct numbers.
    """
    require_template_edit(actor, template)
    checked = content_check(content, actor=actor, course=template.course)
    Template.objects.select_for_update().filter(pk=template.pk).first()
    number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TemplateVersion.objects.create(
        template=template, number=number, author=actor, note=str(note)[:500], **checked.fields
    )
    _tests_create(version, checked.tests)
    template.save(update_fields=["updated_at"])
    return version


def _latest_run(version: TemplateVersion) -> TestRun | None:
    return version.test_runs.filter(finished_at__isnull=False).order_by("-finished_at").first()


def publish_gate(version: TemplateVersion) -> str | None:
    """Why ``version`` may not be published now (a message), or None when it may."""
    if not PromptSettings.load().require_green_tests:
        return None
    if not version.tests.exists():
        return str(_("This site publishes only tested versions: add a test case and run it."))
    latest = _latest_run(version)
    if latest is None or not latest.is_green:
        return str(_("This site publishes only versions whose last test run was green."))
    return None


@transaction.atomic
def template_publish(*, actor: Any, template: Template, version: TemplateVersion) -> Template:
    """Pin ``version`` as what students run (publish, or roll back to an older version).

    Raises PermissionDenied (not staff of the template's course), PublishRefused (a version
    of another template; no green test run while the site requires one).
    """
    require_template_edit(actor, template)
    if template.course_id is None:
        raise PublishRefused(str(_("Library templates are copied into courses, not published.")))
    require(actor, COURSE_MANAGE_PROMPTS, template.course)
    if version.template_id != template.pk:
        raise PublishRefused(str(_("That version belongs to another template.")))
    reason = publish_gate(version)
    if reason:
        raise PublishRefused(reason)
    before = {"published_version": template.published_version_id, "state": template.state}
    template.published_version = version
    template.state = TemplateState.PUBLISHED
    template.save(update_fields=["published_version", "state", "updated_at"])
    after = {"published_version": version.pk, "state": template.state}
    audit(actor=actor, action="prompt.publish", target=template, before=before, after=after)
    transaction.on_commit(lambda: cache.published.forget(template.pk))
    return template


@transaction.atomic
def template_unpublish(*, actor: Any, template: Template) -> Template:
    """Take the template off the course page (the versions stay)."""
    require_template_edit(actor, template)
    before = {"published_version": template.published_version_id, "state": template.state}
    template.published_version = None
    template.state = TemplateState.DRAFT
    template.save(update_fields=["published_version", "state", "updated_at"])
    audit(actor=actor, action="prompt.unpublish", target=template, before=before, after={})
    transaction.on_commit(lambda: cache.published.forget(template.pk))
    return template


@transaction.atomic
def template_archive(*, actor: Any, template: Template) -> Template:
    """Unpublish and hide from the course's list (kept for usage history)."""
    require_template_edit(actor, template)
    template.published_version = None
    template.state = TemplateState.ARCHIVED
    template.save(update_fields=["published_version", "state", "updated_at"])
    audit(actor=actor, action="prompt.archive", target=template)
    transaction.on_commit(lambda: cache.published.forget(template.pk))
    return template


def version_of(template: Template, version_id: Any) -> TemplateVersion:
    """The template's version with that id; NotFound (404) otherwise."""
    version = template.versions.filter(pk=version_id).first()
    if version is None:
        raise NotFound(str(_("This template has no such version.")))
    return version
