"""Registering CAIPI with an LMS: LTI Advantage Dynamic Registration, and manual entry.

Dynamic registration (IMS LTI-DR 1.0), as Moodle 4.x/5.x speaks it:

0. Only an admin-generated one-time URL, or a trusted LMS host, may start it, and only
   public addresses are called, each fetch connecting to exactly the address that was
   checked, without redirects (``registration_guard``).
1. The LMS opens ``/lti/register/<invite>/?openid_configuration=URL&registration_token=T``.
2. CAIPI fetches the platform's OpenID configuration (bearer: the token) and checks it:
   the issuer has the configuration URL's origin, the endpoints CAIPI needs are there,
   id tokens are signed with RS256.
3. When the registration token is a JWT (Moodle's is, signed with the site key), CAIPI
   checks it is signed by that platform's keys and not expired, before using it.
4. CAIPI posts its registration (redirect URIs, JWKS, login URL, scopes, messages, custom
   parameters, name and logo) to the registration endpoint with the token as bearer.
5. The answer's client id and deployment id are stored as a ``Platform`` + ``Deployment``:
   active when the host is trusted or the admin's URL said so, else pending an admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from django.conf import settings
from django.db import transaction
from django.templatetags.static import static
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import Message
from lms_connectors import claims
from lms_connectors.errors import CLOCK_HINT, LtiRefused
from lms_connectors.http import HttpError, LmsSession, pinned_session
from lms_connectors.middleware import frame_ancestors_forget
from lms_connectors.models import Deployment, Platform, RegistrationMethod
from lms_connectors.services import registration_guard as guard

logger = logging.getLogger(__name__)

_REQUIRED_ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")
# Custom parameters Moodle substitutes on every launch; prompts use the course dates.
CUSTOM_PARAMETERS = {
    "caipi_course_start": "$CourseSection.timeFrame.begin",
    "caipi_course_end": "$CourseSection.timeFrame.end",
}


@dataclass(frozen=True)
class RegistrationResult:
    """The stored registration and what the admin should be told."""

    platform: Platform
    deployment_id: str | None
    product_family: str


def issuer_trusted(*, issuer: str) -> bool:
    """True when the issuer's host is in CAIPI_LTI_TRUSTED_ISSUERS (then it is active at once)."""
    return guard.host_trusted(url=issuer)


def registration_name() -> str:
    """The tool's name in the LMS: the CAIPI site and the day, so that two CAIPIs, or a
    registration and its re-registration, can be told apart in Moodle's tool list."""
    host = urlsplit(settings.SITE_URL).netloc
    return f"{settings.LTI_TOOL_NAME} ({host}, {timezone.localdate():%Y-%m-%d})"


def tool_url(path: str) -> str:
    """An absolute URL of CAIPI (from SITE_URL) for ``path``."""
    return settings.SITE_URL.rstrip("/") + path


def _refuse(code: str, message: Message, **kwargs: Any) -> LtiRefused:
    logger.warning("LTI dynamic registration refused code=%s", code)
    return LtiRefused(code, message, **kwargs)


def _http(url: str) -> LmsSession:
    """A session for ``url`` alone, pinned to the addresses the guard checked (no redirects)."""
    return pinned_session(url=url, addresses=guard.addresses_pin(url=url))


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def openid_configuration_fetch(*, url: str, token: str) -> dict[str, Any]:
    """The platform's OpenID configuration, checked. Raises ``LtiRefused``.

    Whatever went wrong fetching it (no answer, an error status, not JSON), the refusal is
    the same: what a foreign host answered is logged, never shown.
    """
    session = _http(url)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with session as client:
            response = client.get(url, headers=headers, allow_redirects=False)
        if response.status_code != 200:
            raise ValueError(f"status {response.status_code}")
        config = response.json()
    except (HttpError, ValueError) as exc:
        logger.info("LTI registration configuration fetch failed: %s", type(exc).__name__)
        raise _refuse("platform_unreachable", guard.UNREACHABLE) from None
    _check_configuration(config=config, url=url)
    guard.same_origin_check(issuer=config["issuer"], config=config)
    for name in ("registration_endpoint", "jwks_uri"):
        guard.address_check(url=config[name])
    return config


def _check_configuration(*, config: Any, url: str) -> None:
    if not isinstance(config, dict) or not isinstance(config.get("issuer"), str):
        raise _refuse("bad_configuration", _("The LMS's configuration names no issuer."))
    if _origin(config["issuer"]) != _origin(url):
        raise _refuse(
            "issuer_mismatch",
            _("The LMS's issuer does not match the address its configuration came from."),
        )
    missing = [
        name for name in (*_REQUIRED_ENDPOINTS, "registration_endpoint") if not config.get(name)
    ]
    if missing:
        raise _refuse(
            "bad_configuration",
            _("The LMS's configuration lacks %(names)s.") % {"names": ", ".join(missing)},
        )
    algs = config.get("id_token_signing_alg_values_supported") or ["RS256"]
    if "RS256" not in algs:
        raise _refuse("bad_configuration", _("The LMS does not sign id tokens with RS256."))


def registration_token_check(*, token: str, jwks_uri: str) -> None:
    """Refuse a JWT registration token that is expired or not signed by this platform.

    Opaque (non-JWT) tokens are left for the platform to judge.
    """
    if token.count(".") != 2:
        return
    session = _http(jwks_uri)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        with session as client:
            key_set = jwt.PyJWKSet.from_dict(client.get(jwks_uri, allow_redirects=False).json())
        keys = [key for key in key_set.keys if kid is None or key.key_id == kid]
        if not keys:
            raise jwt.InvalidSignatureError("no key with this kid")
        jwt.decode(
            token,
            keys[0].key,
            algorithms=["RS256"],
            options={"verify_aud": False, "require": ["exp"]},
            leeway=settings.LTI_CLOCK_SKEW_SECONDS,
        )
    except jwt.ExpiredSignatureError:
        raise _refuse(
            "registration_token_expired",
            _("The registration token has expired. Start the registration again in the LMS."),
            hint=CLOCK_HINT,
        ) from None
    except (jwt.InvalidTokenError, jwt.PyJWKError, HttpError, ValueError):
        raise _refuse(
            "registration_token_foreign",
            _("The registration token was not issued by this LMS."),
        ) from None


def tool_registration_payload(*, config: dict[str, Any]) -> dict[str, Any]:
    """The tool registration CAIPI posts (LTI-DR §3.6), with CAIPI's URLs from SITE_URL."""
    launch_url = tool_url("/lti/launch/")
    offered = set(config.get("scopes_supported") or claims.TOOL_SCOPES)
    return {
        "application_type": "web",
        "response_types": ["id_token"],
        "grant_types": ["implicit", "client_credentials"],
        "initiate_login_uri": tool_url("/lti/login/"),
        "redirect_uris": [launch_url],
        "client_name": registration_name(),
        "jwks_uri": tool_url("/lti/jwks/"),
        "logo_uri": tool_url(static("lms_connectors/caipi.svg")),
        "token_endpoint_auth_method": "private_key_jwt",
        "scope": " ".join(scope for scope in claims.TOOL_SCOPES if scope in offered),
        claims.TOOL_CONFIGURATION: {
            "domain": urlsplit(settings.SITE_URL).netloc,
            "description": "Course-aware AI on the university's own servers.",
            "target_link_uri": launch_url,
            "custom_parameters": CUSTOM_PARAMETERS,
            "claims": ["iss", "sub", "name", "given_name", "family_name", "email", "locale"],
            "messages": [
                {"type": claims.RESOURCE_LINK_REQUEST, "target_link_uri": launch_url},
                {
                    "type": claims.DEEP_LINKING_REQUEST,
                    "target_link_uri": launch_url,
                    "label": f"Add {settings.LTI_TOOL_NAME}",
                },
            ],
        },
    }


def _registration_post(*, config: dict[str, Any], token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    payload = tool_registration_payload(config=config)
    session = _http(config["registration_endpoint"])
    try:
        with session as client:
            response = client.post(
                config["registration_endpoint"],
                json=payload,
                headers=headers,
                allow_redirects=False,
            )
    except HttpError:
        raise _refuse(
            "platform_unreachable", _("The LMS's registration endpoint did not answer.")
        ) from None
    if response.status_code not in (200, 201):
        logger.info("LTI registration post refused status=%s", response.status_code)
        raise _refuse(
            "platform_refused",
            _("The LMS refused the registration."),
            hint=_("A registration token is valid once and for an hour; start again in the LMS."),
        )
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or not answer.get("client_id"):
        raise _refuse("platform_refused", _("The LMS's registration answer has no client id."))
    return answer


def platform_register_dynamic(
    *, openid_configuration: str, registration_token: str, invite_token: str | None = None
) -> RegistrationResult:
    """Run dynamic registration end to end (steps in the module docstring).

    ``invite_token`` is the admin-generated URL's token (None: the plain URL, allowed only
    for trusted hosts). Raises ``LtiRefused`` with a clear message at the first step that
    fails, before any request when the start is not allowed; stores nothing unless the
    platform accepted the registration, and then uses up the invite.
    """
    guard.registration_start_check(
        openid_configuration=openid_configuration, invited=invite_token is not None
    )
    invite = guard.registration_invite_claim(token=invite_token) if invite_token else None
    try:
        result = _register(
            openid_configuration=openid_configuration,
            registration_token=registration_token,
            activate=bool(invite and invite.activate),
        )
    except BaseException:
        if invite is not None:
            guard.registration_invite_release(invite=invite)
        raise
    if invite is not None:
        guard.registration_invite_complete(invite=invite, platform=result.platform)
    return result


def _register(
    *, openid_configuration: str, registration_token: str, activate: bool
) -> RegistrationResult:
    config = openid_configuration_fetch(url=openid_configuration, token=registration_token)
    if registration_token:
        registration_token_check(token=registration_token, jwks_uri=config["jwks_uri"])
    answer = _registration_post(config=config, token=registration_token)
    tool_config = answer.get(claims.TOOL_CONFIGURATION) or {}
    deployment_id = tool_config.get("deployment_id")
    product = (config.get(claims.PLATFORM_CONFIGURATION) or {}).get("product_family_code", "")
    platform = platform_register_manual(
        issuer=config["issuer"],
        client_id=str(answer["client_id"]),
        auth_login_url=config["authorization_endpoint"],
        auth_token_url=config["token_endpoint"],
        key_set_url=config["jwks_uri"],
        auth_audience=config.get("authorization_server", ""),
        deployment_ids=[str(deployment_id)] if deployment_id else [],
        method=RegistrationMethod.DYNAMIC,
        product_family=str(product)[:100],
        activate=activate or issuer_trusted(issuer=config["issuer"]),
        name=registration_name(),
    )
    logger.info("LTI platform registered dynamically platform=%s", platform.pk)
    return RegistrationResult(platform, str(deployment_id) if deployment_id else None, product)


@transaction.atomic
def platform_register_manual(
    *,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    auth_token_url: str,
    key_set_url: str,
    deployment_ids: list[str],
    auth_audience: str = "",
    method: str = RegistrationMethod.MANUAL,
    product_family: str = "",
    name: str = "",
    activate: bool = True,
) -> Platform:
    """Create or update the platform (issuer, client id) and add its deployment ids.

    ``activate=False`` stores it inactive: launches are refused until an admin activates it.
    """
    platform, _ = Platform.objects.update_or_create(
        issuer=issuer,
        client_id=client_id,
        defaults={
            "auth_login_url": auth_login_url,
            "auth_token_url": auth_token_url,
            "key_set_url": key_set_url,
            "auth_audience": auth_audience,
            "method": method,
            "product_family": product_family,
            "is_active": activate,
            "retired_at": None,
            **({"name": name} if name else {}),
        },
    )
    for deployment_id in deployment_ids:
        Deployment.objects.get_or_create(platform=platform, deployment_id=deployment_id)
    frame_ancestors_forget()
    return platform
