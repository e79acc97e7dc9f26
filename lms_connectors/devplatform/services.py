"""Register the development platform in CAIPI, and the claims of its launches."""

from __future__ import annotations

from typing import Any

from caipi.core.models import Course
from lms_connectors import claims
from lms_connectors.devplatform import signing
from lms_connectors.models import LtiContext, Platform, RegistrationMethod
from lms_connectors.services import platform_register_manual


def devplatform_setup(*, course: Course | None = None) -> Platform:
    """Register the dev platform as a CAIPI platform (idempotent).

    With ``course``, the demo course of the dev platform is mapped to that existing
    course instead of a new one being created on the first launch.
    """
    base = signing.base_url()
    platform = platform_register_manual(
        name="Development platform (built in)",
        issuer=signing.issuer(),
        client_id=signing.CLIENT_ID,
        auth_login_url=base + "/auth/",
        auth_token_url=base + "/token/",
        key_set_url=base + "/jwks/",
        deployment_ids=[signing.DEPLOYMENT_ID],
        method=RegistrationMethod.DEVELOPMENT,
        product_family="caipi-devplatform",
    )
    if course is not None:
        LtiContext.objects.update_or_create(
            issuer=platform.issuer,
            context_id=signing.CONTEXT["id"],
            defaults={"course": course, "platform": platform},
        )
    return platform


def launch_claims(
    *, persona: str, nonce: str, message: str, custom: dict[str, str] | None = None
) -> dict[str, Any]:
    """The id_token body a launch of ``persona`` carries (resource link or deep linking)."""
    person = signing.PERSONAS[persona]
    base = signing.base_url()
    body: dict[str, Any] = {
        "aud": signing.CLIENT_ID,
        "azp": signing.CLIENT_ID,
        "nonce": nonce,
        "sub": person["sub"],
        **{key: person[key] for key in ("given_name", "family_name", "name", "email")},
        "locale": "en",
        claims.ROLES: person["roles"],
        claims.VERSION: "1.3.0",
        claims.DEPLOYMENT_ID: signing.DEPLOYMENT_ID,
        claims.CONTEXT: signing.CONTEXT,
        claims.TARGET_LINK_URI: signing.base_url().removesuffix("/lti/dev") + "/lti/launch/",
        claims.TOOL_PLATFORM: {"guid": "caipi-devplatform", "product_family_code": "caipi-dev"},
        claims.CUSTOM: custom or {},
        claims.NRPS: {
            "context_memberships_url": f"{base}/nrps/{signing.CONTEXT['id']}/",
            "service_versions": ["2.0"],
        },
    }
    if message == "deeplink":
        body[claims.MESSAGE_TYPE] = claims.DEEP_LINKING_REQUEST
        body[claims.DEEP_LINKING_SETTINGS] = {
            "deep_link_return_url": f"{base}/deep-link-return/",
            "accept_types": ["ltiResourceLink"],
            "accept_presentation_document_targets": ["iframe", "window"],
            "accept_multiple": False,
            "data": signing.new_id(),
        }
        return body
    body[claims.MESSAGE_TYPE] = claims.RESOURCE_LINK_REQUEST
    link_id = (custom or {}).get("dev_link_id", "dev-link-home")
    body[claims.RESOURCE_LINK] = {"id": link_id, "title": "CAIPI"}
    body[claims.AGS] = {
        "scope": list(claims.TOOL_SCOPES[1:]),
        "lineitems": f"{base}/ags/lineitems/",
        "lineitem": f"{base}/ags/lineitems/{link_id}/",
    }
    return body
