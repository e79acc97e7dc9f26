"""Names and roles: mirror an LMS course's roster into CAIPI memberships."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from caipi.core.models import Membership
from lms_connectors.lti import tool
from lms_connectors.models import LtiContext, LtiIdentity
from lms_connectors.roles import course_role_from_lti
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

    Active members with a course role get a membership (role updated); inactive or
    deleted members and LTI users of this issuer who left the roster lose theirs. Users
    CAIPI knows otherwise (admins, API users) are left alone. Raises ``LtiServiceError``
    (``retryable`` on timeouts and 5xx) and then changes nothing.
    """
    if not context.memberships_url:
        return RosterSyncResult()
    members = tool.roster_members(
        platform=context.platform, memberships_url=context.memberships_url
    )
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
    issuer = context.platform.issuer
    kept: set[int] = set()
    created = updated = 0
    for member in members:
        role = course_role_from_lti(member.get("roles") or [])
        if not member.get("user_id") or role is None or member.get("status", "Active") != "Active":
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
    LtiContext.objects.filter(pk=context.pk).update(roster_synced_at=timezone.now())
    return RosterSyncResult(created=created, updated=updated, removed=removed)
