"""OIDC login initiation and launch validation on top of pylti1p3, stricter than its defaults.

What CAIPI adds to pylti1p3's checks, and why:

1. The signature is checked before the nonce is consumed, so a forged token cannot burn a
   real user's pending nonce; the nonce is then *consumed* (pylti1p3 only checks it exists).
2. ``aud`` (with ``azp`` when several audiences), ``iss``, ``exp`` and ``iat`` are verified
   by PyJWT with a small leeway for clock skew (pylti1p3 turns the audience check off).
3. A state is used once: a second launch with the same state is refused.
4. Every failure becomes an ``LtiRefused`` with a stable code and a message free of
   personal data.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from pylti1p3.contrib.django import DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.exception import LtiException, OIDCException
from pylti1p3.launch_data_storage.base import DisableSessionId

from lms_connectors import claims, selectors
from lms_connectors.errors import CLOCK_HINT, COOKIE_HINT, REGISTRATION_HINT, LtiRefused
from lms_connectors.http import lms_session
from lms_connectors.lti.conf import (
    CaipiToolConf,
    LaunchStorage,
    OneTimeNonceSessionService,
)

logger = logging.getLogger(__name__)

PLATFORM_KEYS_CACHE_SECONDS = 3600


@dataclass(frozen=True)
class Launch:
    """A validated launch: its id (to find it again server-side) and its claims."""

    launch_id: str
    claims: dict[str, Any]

    @property
    def issuer(self) -> str:
        return str(self.claims["iss"])

    @property
    def client_id(self) -> str:
        return _client_id_of(self.claims)

    @property
    def message_type(self) -> str:
        return str(self.claims.get(claims.MESSAGE_TYPE, ""))


def _client_id_of(body: dict[str, Any]) -> str:
    aud = body.get("aud")
    if isinstance(aud, list):
        return str(body["azp"]) if body.get("azp") in aud else str(aud[0] if aud else "")
    return str(aud or "")


class CaipiMessageLaunch(DjangoMessageLaunch):
    """pylti1p3's launch with CAIPI's stricter validation (see the module docstring)."""

    _public_key_cache_data_storage: Any

    def get_client_id(self) -> str:
        return _client_id_of(dict(self._get_jwt_body()))

    def validate(self) -> CaipiMessageLaunch:
        if self._restored:
            raise LtiRefused("invalid_launch", _("A restored launch cannot be validated again."))
        self._validated = True
        try:
            self.validate_state().validate_jwt_format().validate_registration()
            self.validate_jwt_signature().validate_nonce().validate_deployment()
            self.validate_message().save_launch_data()
        except Exception:
            self._validated = False
            raise
        return self

    def validate_state(self) -> CaipiMessageLaunch:
        try:
            super().validate_state()
        except LtiException:
            raise LtiRefused(
                "state_mismatch", _("The login state of this launch is missing."), hint=COOKIE_HINT
            ) from None
        state = self._get_request_param("state")
        marker = "caipi-lti-state-used:" + hashlib.sha256(state.encode()).hexdigest()
        if not caches["default"].add(marker, True, settings.LTI_LAUNCH_DATA_SECONDS):
            raise LtiRefused("reused_state", _("This launch was already used. Start it again."))
        return self

    def validate_jwt_format(self) -> CaipiMessageLaunch:
        try:
            return super().validate_jwt_format()
        except LtiException:
            raise LtiRefused("invalid_token", _("The launch token is not a valid JWT.")) from None

    def validate_registration(self) -> CaipiMessageLaunch:
        body = dict(self._get_jwt_body())
        issuer = body.get("iss")
        if issuer and not selectors.platform_find(
            issuer=str(issuer), client_id=self.get_client_id()
        ):
            inactive_platform_check(issuer=str(issuer), client_id=self.get_client_id())
        if not issuer or not selectors.platform_issuer_known(issuer=str(issuer)):
            raise LtiRefused(
                "unknown_platform",
                _("This LMS is not registered with CAIPI."),
                hint=REGISTRATION_HINT,
            )
        if not selectors.platform_find(issuer=str(issuer), client_id=self.get_client_id()):
            raise LtiRefused(
                "wrong_audience",
                _("The launch token was not issued for CAIPI (its audience is another client)."),
                hint=REGISTRATION_HINT,
            )
        return super().validate_registration()

    def validate_jwt_signature(self) -> CaipiMessageLaunch:
        try:
            public_key, _alg = self.get_public_key()
        except LtiException:
            raise LtiRefused(
                "bad_signature", _("The launch token's signing key is unknown.")
            ) from None
        try:
            jwt.decode(
                self._get_id_token(),
                public_key,
                algorithms=["RS256"],
                audience=self.get_client_id(),
                issuer=self.get_iss(),
                leeway=settings.LTI_CLOCK_SKEW_SECONDS,
                options={"require": ["exp", "iat", "iss", "aud", "nonce"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _token_refusal(exc) from None
        return self

    def get_public_key(self) -> tuple[str, str]:
        """The platform key for this token; on a miss, fetch the platform's JWKS once more.

        Platforms rotate keys too: a kid we have not cached yet must not fail a launch.
        """
        try:
            return super().get_public_key()
        except LtiException:
            storage = self._public_key_cache_data_storage
            if storage is None or self._registration is None:
                raise
        self._public_key_cache_data_storage = None
        self._registration.set_key_set(None)
        try:
            found = super().get_public_key()
        finally:
            self._public_key_cache_data_storage = storage
        self._recache_key_set(storage)
        return found

    def _recache_key_set(self, storage: Any) -> None:
        url = self._registration.get_key_set_url() or ""
        cache_key = "key-set-url-" + hashlib.md5(url.encode()).hexdigest()  # noqa: S324 pylti1p3's key
        with DisableSessionId(storage):
            storage.set_value(
                cache_key, self._registration.get_key_set(), PLATFORM_KEYS_CACHE_SECONDS
            )

    def validate_nonce(self) -> CaipiMessageLaunch:
        try:
            return super().validate_nonce()
        except LtiException:
            raise LtiRefused(
                "replayed_nonce", _("This launch token was already used or has expired.")
            ) from None

    def validate_deployment(self) -> CaipiMessageLaunch:
        try:
            return super().validate_deployment()
        except LtiException:
            raise LtiRefused(
                "unknown_deployment",
                _("This placement of CAIPI (deployment) is not registered."),
                hint=REGISTRATION_HINT,
            ) from None

    def validate_message(self) -> CaipiMessageLaunch:
        try:
            return super().validate_message()
        except LtiException as exc:
            # pylti1p3's validator messages name claims, never their values.
            raise LtiRefused(
                "invalid_message",
                _("The launch message is invalid: %(problem)s.") % {"problem": exc},
            ) from None


def _token_refusal(exc: jwt.InvalidTokenError) -> LtiRefused:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return LtiRefused("expired", _("The launch token has expired."), hint=CLOCK_HINT)
    if isinstance(exc, jwt.ImmatureSignatureError):
        return LtiRefused("not_yet_valid", _("The launch token is not valid yet."), hint=CLOCK_HINT)
    if isinstance(exc, jwt.InvalidSignatureError):
        return LtiRefused("bad_signature", _("The launch token's signature does not verify."))
    if isinstance(exc, jwt.InvalidAudienceError):
        return LtiRefused("wrong_audience", _("The launch token was not issued for CAIPI."))
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return LtiRefused(
            "invalid_token", _("The launch token lacks the %(claim)s claim.") % {"claim": exc.claim}
        )
    return LtiRefused("invalid_token", _("The launch token is invalid."))


def _storage_for(obj: DjangoMessageLaunch | DjangoOIDCLogin) -> None:
    try:
        obj.set_launch_data_storage(LaunchStorage())
    except LtiException:
        raise LtiRefused(
            "cookies_blocked", _("CAIPI's session cookie did not arrive."), hint=COOKIE_HINT
        ) from None


def inactive_platform_check(*, issuer: str, client_id: str | None) -> None:
    """Explain a registration that exists but is pending or retired (else do nothing).

    Shown in the LMS's frame to whoever launched, so it says who can fix it.
    """
    state = selectors.platform_inactive_state(issuer=issuer, client_id=client_id)
    if state == "pending":
        raise LtiRefused(
            "platform_pending",
            _(
                "This LMS has registered CAIPI, but a CAIPI administrator has not activated the "
                "registration yet."
            ),
            hint=_(
                "Ask your LMS administrator to have the registration activated in CAIPI "
                "(Admin > Pending registrations)."
            ),
            status=403,
        )
    if state == "retired":
        raise LtiRefused(
            "platform_retired",
            _("This registration of CAIPI in the LMS has been retired by a CAIPI administrator."),
            hint=_("Ask your LMS administrator to use CAIPI's current registration."),
            status=403,
        )


def login_response(*, request: HttpRequest, launch_url: str) -> HttpResponse:
    """Answer an OIDC login initiation: the cookie check page, then the redirect to the LMS.

    Raises ``LtiRefused`` for missing parameters, or an unknown, pending or retired platform.
    """
    params = request.POST if request.method == "POST" else request.GET
    issuer, client_id = params.get("iss"), params.get("client_id")
    if issuer and not selectors.platform_find(issuer=issuer, client_id=client_id):
        inactive_platform_check(issuer=issuer, client_id=client_id)
    tool_conf = CaipiToolConf()
    login = DjangoOIDCLogin(request, tool_conf, session_service=OneTimeNonceSessionService(request))
    try:
        _storage_for(login)
        login.set_launch_data_lifetime(settings.LTI_LAUNCH_DATA_SECONDS)
        login.enable_check_cookies(
            main_msg="Your browser blocks cookies inside this page.",
            click_msg="Open CAIPI in a new window.",
            loading_msg="Opening CAIPI…",
        )
        return login.redirect(launch_url)
    except OIDCException as exc:
        raise LtiRefused(
            "unknown_platform" if "registration" in str(exc) else "invalid_login",
            _("The login request cannot be accepted: %(problem)s.") % {"problem": exc},
            hint=REGISTRATION_HINT,
        ) from None


def _message_launch(request: HttpRequest) -> CaipiMessageLaunch:
    launch = CaipiMessageLaunch(
        request,
        CaipiToolConf(),
        session_service=OneTimeNonceSessionService(request),
        requests_session=lms_session(),
    )
    _storage_for(launch)
    launch.set_launch_data_lifetime(settings.LTI_LAUNCH_DATA_SECONDS)
    launch.set_public_key_caching(LaunchStorage(), cache_lifetime=PLATFORM_KEYS_CACHE_SECONDS)
    return launch


def launch_validate(*, request: HttpRequest) -> Launch:
    """Validate the id_token posted to the launch URL. Raises ``LtiRefused``."""
    message_launch = _message_launch(request)
    if not request.POST.get("id_token"):
        raise LtiRefused("invalid_token", _("The launch carries no id_token."))
    try:
        message_launch.validate()
    except LtiException as exc:
        logger.info("pylti1p3 refused a launch: %s", type(exc).__name__)
        raise LtiRefused("invalid_launch", _("The launch cannot be accepted.")) from None
    return Launch(
        launch_id=message_launch.get_launch_id(),
        claims=dict(message_launch.get_launch_data()),
    )


def launch_restore(*, request: HttpRequest, launch_id: str) -> Launch:
    """A launch validated earlier, from the server-side store. Raises ``LtiRefused``."""
    try:
        restored = CaipiMessageLaunch.from_cache(
            launch_id,
            request,
            CaipiToolConf(),
            session_service=OneTimeNonceSessionService(request),
            launch_data_storage=LaunchStorage(),
            requests_session=lms_session(),
        )
    except LtiException:
        raise LtiRefused(
            "launch_expired", _("This launch has expired. Open the activity again.")
        ) from None
    return Launch(launch_id=launch_id, claims=dict(restored.get_launch_data()))
