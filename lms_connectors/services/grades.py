"""Grades (AGS): post a score for one user on one placed activity."""

from __future__ import annotations

import logging

from django.utils.translation import gettext_lazy as _

from caipi.core.models import User
from lms_connectors import selectors
from lms_connectors.errors import REGISTRATION_HINT, LtiRefused
from lms_connectors.lti import tool
from lms_connectors.models import LtiResourceLink

logger = logging.getLogger(__name__)


def resource_link_score_post(
    *,
    link: LtiResourceLink,
    user: User,
    score_given: float,
    score_maximum: float,
    comment: str = "",
) -> None:
    """Send ``user``'s score on ``link`` to the LMS gradebook.

    Raises ``LtiRefused`` when the activity takes no grades, the user has no identity at
    that LMS, or the score is out of range; ``LtiServiceError`` when the LMS call fails.
    """
    if not link.accepts_scores:
        raise LtiRefused("not_graded", _("This activity does not send grades to the LMS."))
    if not 0 <= score_given <= score_maximum or score_maximum <= 0:
        raise LtiRefused("bad_score", _("The score must be between 0 and the maximum."))
    platform = selectors.platform_for_services(context=link.context)
    if platform is None:
        raise LtiRefused(
            "unknown_platform",
            _("This course's LMS has no active registration of CAIPI."),
            hint=REGISTRATION_HINT,
        )
    identity = selectors.identity_for_user(user=user, issuer=platform.issuer)
    if identity is None:
        raise LtiRefused("unknown_user", _("This user has no account at the LMS of this course."))
    tool.score_post(
        platform=platform,
        lineitem_url=link.lineitem_url,
        scopes=list(link.ags_scopes),
        sub=identity.sub,
        score_given=score_given,
        score_maximum=score_maximum,
        comment=comment,
    )
    logger.info("LTI score posted link=%s user=%s", link.pk, user.pk)
