"""What a validated launch does in CAIPI: course, user, membership, and where to go."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.models import Course, CourseRole, Membership, User
from lms_connectors import claims, selectors, targets
from lms_connectors.errors import REGISTRATION_HINT, LtiRefused
from lms_connectors.lti.tool import Launch
from lms_connectors.models import LtiContext, LtiLaunchRole, LtiResourceLink, Platform
from lms_connectors.roles import course_role_from_lti, lms_admin_from_lti
from lms_connectors.services.identity import lti_user_upsert

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LaunchResult:
    """Who launched, into which course, with which role, and the URL path to open."""

    user: User
    course: Course
    role: CourseRole
    platform: Platform
    target: str
    url: str
    resource_link: LtiResourceLink | None


@transaction.atomic
def launch_complete(*, launch: Launch) -> LaunchResult:
    """Create or update the course, user and membership a validated launch describes.

    Works for resource link and deep linking launches. Raises ``LtiRefused`` when the launch
    has no course context (403 when the roles grant no course role). Does not log in.
    """
    platform = selectors.platform_find(issuer=launch.issuer, client_id=launch.client_id)
    if platform is None:  # deleted between validation and now
        raise LtiRefused("unknown_platform", _("This LMS is no longer registered."))
    body = launch.claims
    context = _context_upsert(platform=platform, body=body)
    role = course_role_from_lti(body.get(claims.ROLES) or [])
    if role is None:
        raise LtiRefused(
            "no_course_role",
            _("Your role in this course does not give access to CAIPI."),
            hint=_("CAIPI is open to learners, teaching assistants and instructors."),
            status=403,
        )
    user = lti_user_upsert(
        issuer=platform.issuer, sub=str(body["sub"]), profile=_profile(body), launched=True
    )
    Membership.objects.update_or_create(user=user, course=context.course, defaults={"role": role})
    LtiLaunchRole.objects.update_or_create(
        context=context,
        user=user,
        defaults={
            "role": role,
            "lms_admin": lms_admin_from_lti(body.get(claims.ROLES) or []),
            "launched_at": timezone.now(),
        },
    )
    link = _resource_link_upsert(context=context, body=body)
    target = _target(body=body, link=link)
    url = targets.target_url(course=context.course, target=target)
    logger.info(
        "LTI launch accepted platform=%s course=%s role=%s", platform.pk, context.course_id, role
    )
    return LaunchResult(user, context.course, role, platform, target, url, link)


def _context_upsert(*, platform: Platform, body: dict[str, Any]) -> LtiContext:
    claim = body.get(claims.CONTEXT) or {}
    if not claim.get("id"):
        raise LtiRefused(
            "no_context",
            _("CAIPI must be opened from inside a course."),
            hint=REGISTRATION_HINT,
        )
    title = str(claim.get("title") or claim.get("label") or "Course")[:255]
    label = str(claim.get("label") or "")[:100]
    # One course per LMS course (issuer + context id), whichever registration it came by.
    lookup = {"issuer": platform.issuer, "context_id": str(claim["id"])}
    context = LtiContext.objects.filter(**lookup).first()
    if context is None:
        # Serialise first launches of one course so they cannot create two courses.
        Platform.objects.select_for_update().filter(pk=platform.pk).first()
        context = LtiContext.objects.filter(**lookup).first()
    if context is None:
        course = Course.objects.create(title=title, label=label)
        context = LtiContext.objects.create(platform=platform, course=course, **lookup)
    elif context.platform_id != platform.pk:
        # A re-registration: the course moves to the registration it now arrives through.
        context.platform = platform
        context.save(update_fields=["platform", "updated_at"])
    elif (context.course.title, context.course.label) != (title, label):
        Course.objects.filter(pk=context.course_id).update(title=title, label=label)
        context.course.refresh_from_db()
    memberships_url = (body.get(claims.NRPS) or {}).get("context_memberships_url") or ""
    if memberships_url and memberships_url != context.memberships_url:
        context.memberships_url = memberships_url
        context.save(update_fields=["memberships_url", "updated_at"])
    return context


def _profile(body: dict[str, Any]) -> dict[str, Any]:
    presentation = body.get(claims.LAUNCH_PRESENTATION) or {}
    profile = {key: body.get(key) for key in ("given_name", "family_name", "name", "email")}
    # The language of the LMS page the launch came from first, then the user's profile.
    profile["locale"] = presentation.get("locale") or body.get("locale")
    return profile


def _resource_link_upsert(*, context: LtiContext, body: dict[str, Any]) -> LtiResourceLink | None:
    claim = body.get(claims.RESOURCE_LINK) or {}
    if not claim.get("id"):
        return None  # deep linking requests have no resource link
    ags = body.get(claims.AGS) or {}
    link, _ = LtiResourceLink.objects.update_or_create(
        context=context,
        resource_link_id=str(claim["id"]),
        defaults={
            "title": str(claim.get("title") or "")[:255],
            "target": _requested_target(body) or "",
            "lineitem_url": ags.get("lineitem") or "",
            "ags_scopes": list(ags.get("scope") or []),
        },
    )
    return link


def _requested_target(body: dict[str, Any]) -> str | None:
    """The target named by the custom parameter, else by the target link URI's query."""
    custom = body.get(claims.CUSTOM) or {}
    if custom.get(claims.CUSTOM_TARGET):
        return str(custom[claims.CUSTOM_TARGET])[:200]
    query = parse_qs(urlsplit(str(body.get(claims.TARGET_LINK_URI) or "")).query)
    values = query.get("target") or []
    return values[0][:200] if values else None


def _target(*, body: dict[str, Any], link: LtiResourceLink | None) -> str:
    return _requested_target(body) or (link.target if link else "") or targets.DEFAULT_TARGET
