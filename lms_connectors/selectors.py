"""Reads of LTI registrations, contexts and links."""

from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse

from caipi.core.models import Course, User
from caipi.core.notices import Notice
from caipi.core.permissions import SITE_ADMIN, can
from lms_connectors.models import LtiContext, LtiIdentity, LtiResourceLink, Platform


def platform_find(*, issuer: str, client_id: str | None) -> Platform | None:
    """The active platform registered as (issuer, client id).

    Without a client id: the issuer's only active platform, or None when it has several
    (the LMS must then say which client it means).
    """
    platforms = Platform.objects.filter(issuer=issuer, is_active=True)
    if client_id is not None:
        return platforms.filter(client_id=client_id).first()
    found = list(platforms[:2])
    return found[0] if len(found) == 1 else None


def platform_issuer_known(*, issuer: str) -> bool:
    """True when at least one active platform has this issuer."""
    return Platform.objects.filter(issuer=issuer, is_active=True).exists()


def platform_inactive_state(*, issuer: str, client_id: str | None) -> str | None:
    """``pending`` or ``retired`` when the issuer (and client id) has only such rows, else None."""
    platforms = Platform.objects.filter(issuer=issuer, is_active=False)
    if client_id is not None:
        platforms = platforms.filter(client_id=client_id)
    states = {platform.status for platform in platforms}
    if "pending" in states:
        return "pending"
    return "retired" if "retired" in states else None


def pending_registrations_notices(user: User) -> list[Notice]:
    """The admin banner "N LMS registrations wait for activation" (site admins only)."""
    if not can(user, SITE_ADMIN):
        return []
    count = platforms_pending().count()
    if not count:
        return []
    text = (
        "1 LMS registration waits for activation."
        if count == 1
        else f"{count} LMS registrations wait for activation."
    )
    return [Notice(text=text, url=reverse("lti_pending"))]


def platforms_pending() -> QuerySet[Platform]:
    """Registrations waiting for an admin (neither active nor retired), newest first."""
    return Platform.objects.filter(is_active=False, retired_at__isnull=True).order_by("-created_at")


def platform_for_services(*, context: LtiContext) -> Platform | None:
    """The registration to call the context's LMS services with: the context's own when
    active, else the newest active registration of the same issuer (after a retirement)."""
    if context.platform.is_active:
        return context.platform
    return (
        Platform.objects.filter(issuer=context.issuer, is_active=True)
        .order_by("-created_at")
        .first()
    )


def contexts_with_roster() -> QuerySet[LtiContext]:
    """Contexts whose platform offers names and roles, for the periodic sync."""
    active_issuers = Platform.objects.filter(is_active=True).values("issuer")
    return LtiContext.objects.filter(issuer__in=active_issuers).exclude(memberships_url="")


def context_for_course(*, course: Course) -> LtiContext | None:
    """The (first) LMS context mirrored by ``course``."""
    return LtiContext.objects.filter(course=course).select_related("platform").first()


def identity_for_user(*, user: User, issuer: str) -> LtiIdentity | None:
    """The user's LTI identity at ``issuer``, or None."""
    return LtiIdentity.objects.filter(user=user, issuer=issuer).first()


def resource_links_for_course(*, course: Course) -> QuerySet[LtiResourceLink]:
    """Placed activities of a course, for the lecturer's pages."""
    return LtiResourceLink.objects.filter(context__course=course).select_related("context")


def platform_list() -> QuerySet[Platform]:
    """All platforms with their deployments, for the setup page."""
    return Platform.objects.prefetch_related("deployments")
