"""The development platform's identity: its key, issuer, client, deployment and demo course."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "caipi-dev-client"
DEPLOYMENT_ID = "dev-deployment-1"
KID = "caipi-devplatform-1"
CONTEXT = {
    "id": "dev-course-ml101",
    "label": "ML101",
    "title": "Introduction to Machine Learning",
    "type": ["http://purl.imsglobal.org/vocab/lis/v2/course#CourseOffering"],
}
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
PERSONAS: dict[str, dict[str, Any]] = {
    "student": {
        "sub": "dev-student-1",
        "given_name": "Bob",
        "family_name": "Student",
        "name": "Bob Student",
        "email": "bob.student@dev.invalid",
        "roles": [MEMBERSHIP + "Learner"],
    },
    "lecturer": {
        "sub": "dev-lecturer-1",
        "given_name": "Alice",
        "family_name": "Lecturer",
        "name": "Alice Lecturer",
        "email": "alice.lecturer@dev.invalid",
        "roles": [MEMBERSHIP + "Instructor"],
    },
    "student2": {
        "sub": "dev-student-2",
        "given_name": "Erin",
        "family_name": "Student",
        "name": "Erin Student",
        "email": "erin.student@dev.invalid",
        "roles": [MEMBERSHIP + "Learner"],
    },
}


def base_url() -> str:
    return settings.SITE_URL.rstrip("/") + "/lti/dev"


def issuer() -> str:
    return base_url()


def _private_key() -> rsa.RSAPrivateKey:
    """The platform's key, made once into the data folder (mode 0600): a dev tool's key."""
    path = settings.DATA_DIR / "lti-devplatform-key.pem"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.write_bytes(pem)
        path.chmod(0o600)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    return loaded


def jwks() -> dict[str, Any]:
    """The platform's public JWKS."""
    jwk = json.loads(RSAAlgorithm.to_jwk(_private_key().public_key()))
    return {"keys": [{**jwk, "kid": KID, "alg": "RS256", "use": "sig"}]}


def sign(claims: dict[str, Any], *, lifetime: int = 300) -> str:
    """An RS256 JWT from the platform, with iss/iat/exp filled in."""
    now = int(time.time())
    body = {"iss": issuer(), "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode(body, _private_key(), algorithm="RS256", headers={"kid": KID})


def new_id() -> str:
    return uuid.uuid4().hex
