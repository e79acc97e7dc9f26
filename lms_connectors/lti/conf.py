"""pylti1p3's tool configuration, backed by CAIPI's own models.

Why not pylti1p3's ``lti1p3_tool_config`` Django app: it keeps one key pair per
registration, in plain text, whereas CAIPI has one set of tool keys for all platforms,
encrypted and rotatable (``lms_connectors.keys``); and dynamic registration, contexts and
identities need their own relations to the platform row anyway. So the ``ToolConf`` below
reads ``Platform`` and ``Deployment`` and hands pylti1p3 ``Registration`` objects.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import caches
from pylti1p3.contrib.django import DjangoCacheDataStorage
from pylti1p3.contrib.django.session import DjangoSessionService
from pylti1p3.deployment import Deployment as LtiDeployment
from pylti1p3.registration import Registration
from pylti1p3.tool_config import ToolConfAbstract

from lms_connectors import keys, selectors
from lms_connectors.models import Deployment, Platform

logger = logging.getLogger(__name__)


def registration_for(platform: Platform) -> Registration:
    """A pylti1p3 Registration of ``platform``, signing with CAIPI's current key."""
    key = keys.signing_key()
    return (
        Registration()
        .set_issuer(platform.issuer)
        .set_client_id(platform.client_id)
        .set_auth_login_url(platform.auth_login_url)
        .set_auth_token_url(platform.auth_token_url)
        .set_auth_audience(platform.auth_audience or platform.auth_token_url)
        .set_key_set_url(platform.key_set_url)
        .set_tool_private_key(key.private_pem)
        .set_tool_public_key(key.public_pem)
    )


class CaipiToolConf(ToolConfAbstract):
    """Registrations and deployments from the database; every issuer may have many clients."""

    def check_iss_has_one_client(self, iss: str) -> bool:
        return False

    def check_iss_has_many_clients(self, iss: str) -> bool:
        return True

    def find_registration_by_issuer(self, iss: str, *args: Any, **kwargs: Any) -> Any:
        return self.find_registration_by_params(iss, None)

    def find_registration_by_params(
        self, iss: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Any:
        platform = selectors.platform_find(issuer=iss, client_id=client_id)
        return registration_for(platform) if platform else None

    def find_deployment(self, iss: str, deployment_id: str) -> Any:
        return self.find_deployment_by_params(iss, deployment_id, None)

    def find_deployment_by_params(
        self, iss: str, deployment_id: str, client_id: str | None, *args: Any, **kwargs: Any
    ) -> Any:
        platform = selectors.platform_find(issuer=iss, client_id=client_id)
        if platform is None:
            return None
        known = Deployment.objects.filter(platform=platform, deployment_id=deployment_id)
        return LtiDeployment().set_deployment_id(deployment_id) if known.exists() else None


class LaunchStorage(DjangoCacheDataStorage):
    """Launch data, state and nonces in Django's cache (Redis in production).

    Adds ``take_value``: delete-and-report, atomic in Redis, so a nonce is used once.
    """

    def __init__(self) -> None:
        super().__init__(cache_name="default")

    def take_value(self, key: str) -> bool:
        return bool(caches["default"].delete(self._prepare_key(key)))


class OneTimeNonceSessionService(DjangoSessionService):
    """pylti1p3 only checks that a nonce exists; CAIPI also consumes it (no replay)."""

    def check_nonce(self, nonce: str) -> bool:
        storage = self.data_storage
        assert isinstance(storage, LaunchStorage), "LaunchStorage must be set"
        return storage.take_value(self._get_key("nonce", nonce))
