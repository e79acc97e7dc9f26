"""A test LMS for LTI: a real local HTTP server that behaves like Moodle's LTI side.

It serves its OpenID configuration, dynamic registration endpoint, JWKS, OIDC auth
endpoint (answering with the auto-submitting form a browser would post to CAIPI), token
endpoint (checking CAIPI's signed client assertion), names-and-roles and AGS score
endpoints. Tests sign their own id tokens with ``sign`` to try every refusal.
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
DL_SETTINGS = "https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"
NRPS_CLAIM = "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice"
AGS_CLAIM = "https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"
TOOL_CONFIGURATION = "https://purl.imsglobal.org/spec/lti-tool-configuration"

PEOPLE = {
    "learner": {
        "sub": "moodle-user-17",
        "given_name": "Bob",
        "family_name": "Student",
        "name": "Bob Student",
        "email": "bob@uni.invalid",
        "roles": [MEMBERSHIP + "Learner"],
    },
    "instructor": {
        "sub": "moodle-user-3",
        "given_name": "Alice",
        "family_name": "Lecturer",
        "name": "Alice Lecturer",
        "email": "alice@uni.invalid",
        "roles": [MEMBERSHIP + "Instructor"],
    },
    "assistant": {
        "sub": "moodle-user-9",
        "given_name": "Tim",
        "family_name": "Tutor",
        "name": "Tim Tutor",
        "email": "tim@uni.invalid",
        "roles": [
            MEMBERSHIP + "Instructor",
            "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant",
        ],
    },
}


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass
class TestPlatform:
    """State of the fake LMS; the HTTP handler reads and records through it."""

    base_url: str = ""
    client_id: str = "moodle-client-42"
    deployment_id: str = "7"
    key: rsa.RSAPrivateKey = field(default_factory=new_key)
    kid: str = "platform-key-1"
    tool_jwks: dict[str, Any] | None = None
    registrations: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    tokens: dict[str, list[str]] = field(default_factory=dict)
    context: dict[str, Any] = field(
        default_factory=lambda: {
            "id": "course-4711",
            "label": "ML101",
            "title": "Introduction to Machine Learning",
        }
    )
    custom: dict[str, str] = field(default_factory=dict)
    next_message: str = "LtiResourceLinkRequest"
    hosts: list[str] = field(default_factory=list)  # the Host header of every request
    redirects: dict[str, str] = field(default_factory=dict)  # path -> Location of a 302

    # --- identity ---------------------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "RS256", "use": "sig"}]}

    def sign(self, body: dict[str, Any], *, key: Any = None, kid: str | None = None) -> str:
        return jwt.encode(
            body, key or self.key, algorithm="RS256", headers={"kid": kid or self.kid}
        )

    def registration_token(self, *, expired: bool = False, key: Any = None) -> str:
        now = int(time.time())
        exp = now - 3600 if expired else now + 3600
        return self.sign(
            {
                "sub": self.client_id,
                "scope": "reg",
                "iat": now - 7200 if expired else now,
                "exp": exp,
            },
            key=key,
        )

    def openid_configuration(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/mod/lti/auth.php"),
            "token_endpoint": self.url("/mod/lti/token.php"),
            "jwks_uri": self.url("/mod/lti/certs.php"),
            "registration_endpoint": self.url("/mod/lti/openid-registration.php"),
            "scopes_supported": [
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                "https://purl.imsglobal.org/spec/lti-ags/scope/result.readonly",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem.readonly",
                "openid",
            ],
            "response_types_supported": ["id_token"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": [
                    {"type": "LtiResourceLinkRequest"},
                    {"type": "LtiDeepLinkingRequest"},
                ],
            },
        }

    # --- launches ---------------------------------------------------------------------------

    def launch_claims(
        self,
        *,
        person: str,
        nonce: str,
        message_type: str | None = None,
        tool_url: str = "http://testserver/lti/launch/",
    ) -> dict[str, Any]:
        who = PEOPLE[person]
        now = int(time.time())
        message_type = message_type or self.next_message
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "iat": now,
            "exp": now + 60,
            "nonce": nonce,
            "sub": who["sub"],
            "given_name": who["given_name"],
            "family_name": who["family_name"],
            "name": who["name"],
            "email": who["email"],
            LTI + "message_type": message_type,
            LTI + "version": "1.3.0",
            LTI + "deployment_id": self.deployment_id,
            LTI + "target_link_uri": tool_url,
            LTI + "roles": who["roles"],
            LTI + "context": self.context,
            LTI + "custom": dict(self.custom),
            LTI + "launch_presentation": {"locale": "de", "document_target": "iframe"},
            NRPS_CLAIM: {
                "context_memberships_url": self.url("/nrps/course-4711"),
                "service_versions": ["2.0"],
            },
        }
        if message_type == "LtiDeepLinkingRequest":
            body[DL_SETTINGS] = {
                "deep_link_return_url": self.url("/mod/lti/contentitem_return.php"),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "data": "opaque-platform-data",
            }
        else:
            body[LTI + "resource_link"] = {"id": "link-1", "title": "Ask CAIPI"}
            body[AGS_CLAIM] = {
                "scope": [
                    "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                    "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                ],
                "lineitems": self.url("/ags/lineitems"),
                "lineitem": self.url("/ags/lineitems/55/lineitem"),
            }
        return body

    def auth_form(self, query: dict[str, str]) -> str:
        """What Moodle's auth.php answers: the self-posting form with id_token and state."""
        person = query["login_hint"]
        body = self.launch_claims(
            person=person, nonce=query["nonce"], tool_url=query["redirect_uri"]
        )
        fields = {"id_token": self.sign(body), "state": query["state"]}
        inputs = "".join(
            f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items()
        )
        action = html.escape(query["redirect_uri"])
        return f'<form id="f" method="post" action="{action}">{inputs}</form>'

    # --- services ---------------------------------------------------------------------------

    def check_client_assertion(self, assertion: str) -> bool:
        if not self.tool_jwks:
            return False
        kid = jwt.get_unverified_header(assertion).get("kid")
        for jwk in self.tool_jwks["keys"]:
            if jwk["kid"] == kid:
                key = RSAAlgorithm.from_jwk(json.dumps(jwk))
                jwt.decode(
                    assertion, key, algorithms=["RS256"], audience=self.url("/mod/lti/token.php")
                )
                return True
        return False

    def members(self) -> list[dict[str, Any]]:
        out = []
        for who in PEOPLE.values():
            out.append(
                {
                    "status": "Active",
                    "user_id": who["sub"],
                    "roles": who["roles"],
                    "name": who["name"],
                    "given_name": who["given_name"],
                    "family_name": who["family_name"],
                    "email": who["email"],
                }
            )
        out.append(
            {"status": "Inactive", "user_id": "moodle-user-99", "roles": [MEMBERSHIP + "Learner"]}
        )
        return out


class _Handler(BaseHTTPRequestHandler):
    platform: TestPlatform

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _bearer_scopes(self) -> list[str]:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.platform.tokens.get(token, [])

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        p = self.platform
        p.hosts.append(self.headers.get("Host", ""))
        if parts.path in p.redirects:
            self.send_response(302)
            self.send_header("Location", p.redirects[parts.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif parts.path == "/mod/lti/openid-configuration.php":
            self._send(200, p.openid_configuration())
        elif parts.path == "/mod/lti/certs.php":
            self._send(200, p.jwks())
        elif parts.path == "/mod/lti/auth.php":
            self._send(200, p.auth_form(query), "text/html")
        elif parts.path.startswith("/nrps/"):
            if (
                "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"
                not in self._bearer_scopes()
            ):
                self._send(401, {"error": "unauthorized"})
                return
            self._send(
                200,
                {"id": p.url(parts.path), "context": p.context, "members": p.members()},
                "application/vnd.ims.lti-nrps.v2.membershipcontainer+json",
            )
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length).decode()
        parts = urlsplit(self.path)
        p = self.platform
        p.hosts.append(self.headers.get("Host", ""))
        if parts.path == "/mod/lti/openid-registration.php":
            self._register(raw)
        elif parts.path == "/mod/lti/token.php":
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            try:
                ok = p.check_client_assertion(form.get("client_assertion", ""))
            except jwt.InvalidTokenError:
                ok = False
            if not ok:
                self._send(401, {"error": "invalid_client"})
                return
            token = uuid.uuid4().hex
            p.tokens[token] = form.get("scope", "").split()
            self._send(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})
        elif re.fullmatch(r"/ags/lineitems/\d+/lineitem/scores", parts.path):
            if "https://purl.imsglobal.org/spec/lti-ags/scope/score" not in self._bearer_scopes():
                self._send(401, {"error": "unauthorized"})
                return
            p.scores.append({"path": parts.path, **json.loads(raw)})
            self._send(200, {})
        else:
            self._send(404, {"error": "not found"})

    def _register(self, raw: str) -> None:
        p = self.platform
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            jwt.decode(token, p.key.public_key(), algorithms=["RS256"])
        except jwt.InvalidTokenError:
            self._send(401, {"error": "invalid registration token"})
            return
        payload = json.loads(raw)
        p.registrations.append(payload)
        answer = {
            **payload,
            "client_id": p.client_id,
            TOOL_CONFIGURATION: {**payload[TOOL_CONFIGURATION], "deployment_id": p.deployment_id},
        }
        self._send(200, answer)


@contextmanager
def running_platform() -> Iterator[TestPlatform]:
    """A TestPlatform served on a free local port for the duration of the block."""
    platform = TestPlatform()
    handler = type("Handler", (_Handler,), {"platform": platform})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    platform.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield platform
    finally:
        server.shutdown()
        server.server_close()
