"""Reads of LTI registrations, contexts and links."""

from __future__ import annotations

from django.db.models import QuerySet

from caipi.core.models import Course, User
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


def contexts_with_roster() -> QuerySet[LtiContext]:
    """Contexts whose platform offers names and roles, for the periodic sync."""
    return LtiContext.objects.filter(platform__is_active=True).exclude(memberships_url="")


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
