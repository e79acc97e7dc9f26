"""Names and roles: mirror an LMS course's roster into CAIPI memberships."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.models import Membership
from lms_connectors import selectors
from lms_connectors.errors import REGISTRATION_HINT, LtiRefused
from lms_connectors.lti import tool
from lms_connectors.models import LtiContext, LtiIdentity, LtiLaunchRole
from lms_connectors.roles import course_role_from_lti, effective_course_role
from lms_connectors.services.identity import lti_user_upsert

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RosterSyncResult:
    """How many memberships a sync created, updated and removed."""

    created: int = 0
    updated: int = 0
    removed: int = 0


def roster_sync(*, context: LtiContext) -> RosterSyncResult:
    """Fetch the context's roster (NRPS) and make CAIPI's memberships match it.

    Active members with a course role get a membership, with the role their latest launch
    gave when they launched (``roles`` rule 5), else the roster's; inactive or deleted
    members and LTI users of this issuer who left the roster lose theirs, except LMS
    administrators who launched. Users CAIPI knows otherwise (admins, API users) are left
    alone. Raises ``LtiRefused`` when the LMS has no active registration any more and
    ``LtiServiceError`` (``retryable`` on timeouts and 5xx); both change nothing.
    """
    if not context.memberships_url:
        return RosterSyncResult()
    platform = selectors.platform_for_services(context=context)
    if platform is None:
        raise LtiRefused(
            "unknown_platform",
            _("This course's LMS has no active registration of CAIPI."),
            hint=REGISTRATION_HINT,
        )
    members = tool.roster_members(platform=platform, memberships_url=context.memberships_url)
    result = _apply_roster(context=context, members=members)
    logger.info(
        "LTI roster synced context=%s created=%s updated=%s removed=%s",
        context.pk,
        result.created,
        result.updated,
        result.removed,
    )
    return result


@transaction.atomic
def _apply_roster(*, context: LtiContext, members: list[dict[str, Any]]) -> RosterSyncResult:
    issuer = context.issuer
    launched = _launch_roles_by_sub(context=context)
    kept: set[int] = {row.user_id for row in launched.values() if row.lms_admin}
    created = updated = 0
    for member in members:
        if not member.get("user_id") or member.get("status", "Active") != "Active":
            continue
        launch = launched.get(str(member["user_id"]))
        role = effective_course_role(
            roster_role=course_role_from_lti(member.get("roles") or []),
            launch_role=launch.role if launch else None,
        )
        if role is None:
            continue
        user = lti_user_upsert(
            issuer=issuer, sub=str(member["user_id"]), profile=member, launched=False
        )
        membership, was_created = Membership.objects.get_or_create(
            user=user, course=context.course, defaults={"role": role}
        )
        if not was_created and membership.role != role:
            membership.role = role
            membership.save(update_fields=["role", "updated_at"])
            updated += 1
        created += int(was_created)
        kept.add(user.pk)
    lti_users = LtiIdentity.objects.filter(issuer=issuer).values("user_id")
    removed, _ = (
        Membership.objects.filter(course=context.course, user__in=lti_users)
        .exclude(user__in=kept)
        .delete()
    )
    # A launch role only speaks for the enrolment it was made in.
    LtiLaunchRole.objects.filter(context=context).exclude(user__in=kept).delete()
    LtiContext.objects.filter(pk=context.pk).update(roster_synced_at=timezone.now())
    return RosterSyncResult(created=created, updated=updated, removed=removed)


def _launch_roles_by_sub(*, context: LtiContext) -> dict[str, LtiLaunchRole]:
    """The context's launch roles, keyed by the LMS user id (``sub``) of their user."""
    rows = {row.user_id: row for row in LtiLaunchRole.objects.filter(context=context)}
    identities = LtiIdentity.objects.filter(issuer=context.issuer, user_id__in=list(rows))
    return {sub: rows[user_id] for user_id, sub in identities.values_list("user_id", "sub")}
