"""Who may start a dynamic registration, and which addresses CAIPI will call for one.

Dynamic registration makes CAIPI fetch a URL it is given and post to an endpoint that URL
names, so an open ``/lti/register/`` is a server-side request forgery tool (a port scanner,
a way to make CAIPI post to internal services). The rules, as careful LTI tools apply them:

1. A registration starts from a one-time, expiring URL an admin generated
   (``/lti/register/<token>/``), or from the plain URL only for an LMS host listed in
   CAIPI_LTI_TRUSTED_ISSUERS. Anything else is refused before any request leaves CAIPI.
2. Every address CAIPI calls must resolve to public addresses only; private, loopback,
   link-local and other special addresses are refused unless
   CAIPI_LTI_REGISTRATION_ALLOW_PRIVATE is on (a lab, the demo, the tests). The name is
   resolved once per fetch (``addresses_pin``) and the connection goes only to the addresses
   that were checked, so a name that resolves differently a moment later (DNS rebinding)
   cannot steer the request to an internal address; redirects are not followed.
3. The registration endpoint, JWKS and token endpoint must have the issuer's origin.
4. Refusals never say what a foreign host answered (status, body): one message for
   "could not be fetched", details only in the log.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import secrets
import socket
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from caipi.core.errors import Message
from caipi.core.models import User
from lms_connectors.errors import LtiRefused
from lms_connectors.models import Platform, RegistrationInvite

logger = logging.getLogger(__name__)

INVITE_REFUSAL = _(
    "This registration URL is not valid: it was used already, has expired, or never existed. "
    "A CAIPI administrator can generate a new one on CAIPI's LTI setup page (/lti/setup/)."
)


def _refuse(code: str, message: Message) -> LtiRefused:
    logger.warning("LTI dynamic registration refused code=%s", code)
    return LtiRefused(code, message, status=403 if code.startswith("registration_not") else 400)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def host_trusted(*, url: str) -> bool:
    """True when the URL's host is in CAIPI_LTI_TRUSTED_ISSUERS (``*`` trusts every host)."""
    host = (urlsplit(url).hostname or "").lower()
    return bool(host) and any(
        allowed == "*" or host == allowed.lower() for allowed in settings.LTI_TRUSTED_ISSUERS
    )


@transaction.atomic
def registration_invite_create(*, created_by: User | None, activate: bool = False) -> str:
    """A new one-time registration URL (absolute); only its token's hash is stored."""
    token = secrets.token_urlsafe(32)
    RegistrationInvite.objects.create(
        token_hash=_token_hash(token),
        created_by=created_by,
        activate=activate,
        expires_at=timezone.now() + timedelta(hours=settings.LTI_REGISTRATION_URL_HOURS),
    )
    return settings.SITE_URL.rstrip("/") + f"/lti/register/{token}/"


def registration_invite_claim(*, token: str) -> RegistrationInvite:
    """Claim an unused, unexpired invite (conditional update: two requests cannot both win).

    Raises ``LtiRefused`` (403) otherwise. Release it with ``registration_invite_release``
    when the registration then fails, so the admin can retry from the LMS.
    """
    now = timezone.now()
    claimed = RegistrationInvite.objects.filter(
        token_hash=_token_hash(token), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        raise _refuse("registration_not_invited", INVITE_REFUSAL)
    return RegistrationInvite.objects.get(token_hash=_token_hash(token))


def registration_invite_release(*, invite: RegistrationInvite) -> None:
    """Make a claimed invite usable again (its registration failed)."""
    RegistrationInvite.objects.filter(pk=invite.pk, platform__isnull=True).update(used_at=None)


def registration_invite_complete(*, invite: RegistrationInvite, platform: Platform) -> None:
    """Record which platform the invite registered."""
    RegistrationInvite.objects.filter(pk=invite.pk).update(platform=platform)


def registration_start_check(*, openid_configuration: str, invited: bool) -> None:
    """Refuse a registration nobody asked for: no invite, and the host is not trusted."""
    if not invited and not host_trusted(url=openid_configuration):
        raise _refuse(
            "registration_not_allowed",
            _(
                "CAIPI accepts registrations only from a registration URL a CAIPI administrator "
                "generated (on /lti/setup/), or from an LMS listed in CAIPI_LTI_TRUSTED_ISSUERS."
            ),
        )


def _special(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the seam tests replace to play a rebinding DNS)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def address_check(*, url: str) -> None:
    """Refuse a URL that is not http(s) or whose host resolves to a non-public address."""
    addresses_pin(url=url)


def addresses_pin(*, url: str) -> list[str]:
    """The addresses CAIPI will connect to for ``url`` (and no others): its host resolved
    once, refused when ANY of them is not public (unless private ones are allowed).

    A name that does not resolve is refused with the same message as an unreachable host
    (nothing about it is echoed).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse("bad_configuration_url", _("The LMS's address is not an http(s) URL."))
    try:
        addresses = resolve(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError, ValueError):
        addresses = []
    if not addresses:
        logger.info("LTI registration host does not resolve")
        raise _refuse("platform_unreachable", UNREACHABLE) from None
    if not settings.LTI_REGISTRATION_ALLOW_PRIVATE and any(_special(a) for a in addresses):
        raise _refuse(
            "private_address",
            _(
                "The LMS's address is private or local; CAIPI registers only with public LMS "
                "addresses (an operator can allow private ones with "
                "CAIPI_LTI_REGISTRATION_ALLOW_PRIVATE)."
            ),
        )
    return addresses


UNREACHABLE = _(
    "The LMS's configuration could not be fetched from that address. Check that the LMS "
    "is reachable from CAIPI's server and start the registration again."
)


def same_origin_check(*, issuer: str, config: dict[str, object]) -> None:
    """The registration endpoint, JWKS and token endpoint must be on the issuer's origin."""
    origin = _origin(issuer)
    for name in ("registration_endpoint", "jwks_uri", "token_endpoint"):
        if _origin(str(config.get(name) or "")) != origin:
            raise _refuse(
                "endpoint_foreign",
                _("The LMS's %(name)s is not on the LMS's own address (%(host)s).")
                % {"name": name, "host": origin[1]},
            )


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()
