"""CAIPI's own RSA signing keys: generated on first use, rotatable, published as JWKS.

Where the private key lives, and why: in the database (``ToolKey``), encrypted with Fernet
under a key derived (HKDF-SHA256) from ``SECRET_KEY``. The database is what every web and
worker process on every machine already shares, so a rotation done on one machine is seen
by all at once — a key file in ``CAIPI_DATA_DIR`` would need copying to each machine. A
database dump alone does not reveal the key; it takes ``SECRET_KEY`` too. Changing
``SECRET_KEY`` makes the stored keys unreadable: CAIPI then retires them and makes a new
one (platforms fetch our JWKS by URL, so they follow). Operators who keep keys in their own
vault set ``CAIPI_LTI_PRIVATE_KEY_FILE`` instead; that PEM then signs, and is published.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from lms_connectors.models import ToolKey

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    """The key CAIPI signs with now."""

    kid: str
    private_pem: str
    public_pem: str


def _fernet() -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"caipi-lti-tool-key"
    ).derive(settings.SECRET_KEY.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def secret_encrypt(text: str) -> str:
    """``text`` encrypted like the tool keys (e.g. a Moodle web service token at rest)."""
    return _fernet().encrypt(text.encode()).decode()


def secret_decrypt(token: str) -> str | None:
    """What ``secret_encrypt`` made, or None when it no longer decrypts (SECRET_KEY changed)."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        return None


def _new_key_pems() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


def _public_pem_of(private_pem: str) -> str:
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def _kid(public_pem: str) -> str:
    from lms_connectors.lti.tool import public_jwk

    return str(public_jwk(public_pem=public_pem)["kid"])


@transaction.atomic
def tool_key_create() -> ToolKey:
    """Generate a new active key. Callers retire the previous one (see ``tool_key_rotate``)."""
    private_pem, public_pem = _new_key_pems()
    key = ToolKey.objects.create(
        kid=_kid(public_pem),
        public_pem=public_pem,
        private_pem_encrypted=_fernet().encrypt(private_pem.encode()).decode(),
    )
    logger.info("LTI tool key created kid=%s", key.kid)
    return key


@transaction.atomic
def tool_key_rotate() -> ToolKey:
    """Retire every active key (still published for the grace period) and make a new one."""
    retired = ToolKey.objects.filter(retired_at__isnull=True).update(retired_at=timezone.now())
    key = tool_key_create()
    logger.info("LTI tool keys rotated: %s retired, new kid=%s", retired, key.kid)
    return key


def tool_key_prune() -> int:
    """Delete retired keys whose grace period is over. Returns how many were deleted."""
    cutoff = timezone.now() - timedelta(seconds=_grace_seconds())
    deleted, _ = ToolKey.objects.filter(retired_at__lt=cutoff).delete()
    return deleted


def signing_key() -> SigningKey:
    """The key to sign with: the configured PEM file, else the newest active stored key.

    Creates the first key on first use. Two processes racing on an empty table may both
    create one; both are then active and published, and the newest signs — harmless.
    """
    configured = settings.LTI_PRIVATE_KEY_FILE
    if configured:
        private_pem = Path(configured).read_text()
        public_pem = _public_pem_of(private_pem)
        return SigningKey(kid=_kid(public_pem), private_pem=private_pem, public_pem=public_pem)
    key = ToolKey.objects.filter(retired_at__isnull=True).first() or tool_key_create()
    try:
        private_pem = _fernet().decrypt(key.private_pem_encrypted.encode()).decode()
    except InvalidToken:
        logger.error("LTI tool key kid=%s unreadable (SECRET_KEY changed?); rotating", key.kid)
        return _readable(tool_key_rotate())
    return SigningKey(kid=key.kid, private_pem=private_pem, public_pem=key.public_pem)


def _readable(key: ToolKey) -> SigningKey:
    private_pem = _fernet().decrypt(key.private_pem_encrypted.encode()).decode()
    return SigningKey(kid=key.kid, private_pem=private_pem, public_pem=key.public_pem)


def _grace_seconds() -> int:
    return settings.LTI_KEY_GRACE_DAYS * 86400


def published_public_pems() -> list[str]:
    """Public keys for the JWKS: the signing key and retired keys still within grace."""
    pems = [signing_key().public_pem]
    grace = _grace_seconds()
    for key in ToolKey.objects.all():
        if key.published_at(grace_seconds=grace) and key.public_pem not in pems:
            pems.append(key.public_pem)
    return pems
