"""LTI Advantage services through pylti1p3: deep linking response, names and roles, scores.

Also the tool's public JWKS, built the way pylti1p3 computes key ids, so that the ``kid``
in every JWT CAIPI signs matches a key it publishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from pylti1p3.assignments_grades import AssignmentsGradesService
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException, LtiServiceException
from pylti1p3.grade import Grade
from pylti1p3.lineitem import LineItem
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.registration import Registration
from pylti1p3.service_connector import ServiceConnector

from lms_connectors import claims
from lms_connectors.errors import LtiRefused
from lms_connectors.http import lms_session
from lms_connectors.lti.conf import registration_for
from lms_connectors.lti.launch import Launch
from lms_connectors.models import Platform

logger = logging.getLogger(__name__)


class LtiServiceError(LtiRefused):
    """A call to the platform's NRPS/AGS service failed. Retryable on 5xx and timeouts."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__("platform_service_error", message, status=502)
        self.retryable = retryable


@dataclass(frozen=True)
class ContentItem:
    """One LTI resource link CAIPI places with deep linking."""

    title: str
    url: str
    custom: dict[str, str]
    text: str = ""
    score_maximum: float | None = None


def public_jwk(*, public_pem: str) -> dict[str, Any]:
    """The public key as a JWK with pylti1p3's kid (the RFC 7638 thumbprint), RS256, sig."""
    return dict(Registration.get_jwk(public_pem))


def deep_link_response_html(*, launch: Launch, platform: Platform, items: list[ContentItem]) -> str:
    """The auto-submitting form that returns the signed content items to the platform."""
    settings_claim = launch.claims[claims.DEEP_LINKING_SETTINGS]
    deep_link = DeepLink(
        registration_for(platform), launch.claims[claims.DEPLOYMENT_ID], settings_claim
    )
    resources = []
    for item in items:
        resource = (
            DeepLinkResource()
            .set_url(item.url)
            .set_title(item.title)
            .set_custom_params(item.custom)
        )
        if item.score_maximum:
            line_item = LineItem().set_score_maximum(item.score_maximum).set_label(item.title)
            resource.set_lineitem(line_item)
        resources.append(resource)
    return deep_link.output_response_form(resources)


def _connector(platform: Platform) -> ServiceConnector:
    return ServiceConnector(registration_for(platform), lms_session())


def _service_error(exc: Exception) -> LtiServiceError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    retryable = status is None or status >= 500
    logger.warning("LTI platform service call failed status=%s", status)
    return LtiServiceError(f"The LMS service call failed (status {status}).", retryable=retryable)


def roster_members(*, platform: Platform, memberships_url: str) -> list[dict[str, Any]]:
    """Every member of the context, all pages followed. Raises ``LtiServiceError``."""
    service = NamesRolesProvisioningService(
        _connector(platform), {"context_memberships_url": memberships_url}
    )
    try:
        return [dict(member) for member in service.get_members()]
    except (LtiServiceException, LtiException, OSError) as exc:
        raise _service_error(exc) from None


def score_post(
    *,
    platform: Platform,
    lineitem_url: str,
    scopes: list[str],
    sub: str,
    score_given: float,
    score_maximum: float,
    comment: str = "",
) -> None:
    """Post one user's score to an AGS line item. Raises ``LtiServiceError``."""
    service = AssignmentsGradesService(
        _connector(platform), {"scope": scopes, "lineitem": lineitem_url}
    )
    grade = (
        Grade()
        .set_score_given(score_given)
        .set_score_maximum(score_maximum)
        .set_timestamp(timezone.now().isoformat())
        .set_activity_progress("Completed")
        .set_grading_progress("FullyGraded")
        .set_user_id(sub)
    )
    if comment:
        grade.set_comment(comment)
    try:
        service.put_grade(grade)
    except (LtiServiceException, LtiException, OSError) as exc:
        raise _service_error(exc) from None
