"""Registration fetches connect to exactly the address CAIPI checked (issue 9.4, DNS rebinding).

An attacker's name can resolve to a public address when CAIPI checks it and to 127.0.0.1 or
169.254.169.254 a moment later, when the HTTP client would resolve it again to connect. Here
the DNS is the guard's resolver seam (``registration_guard.resolve``), and "the internet" is
urllib3's socket factory, which records where CAIPI connects and carries the connections for
the public address 93.184.215.14 to the test LMS on loopback.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3.util.connection
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from lms_connectors.errors import LtiRefused
from lms_connectors.http import HttpError, pinned_session
from lms_connectors.models import Platform
from lms_connectors.services import registration_guard
from lms_connectors.services.registration_guard import addresses_pin, registration_invite_create

PUBLIC = "93.184.215.14"
NAME = "lms.uni.example"


@pytest.fixture(autouse=True)
def _settings(settings):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = False
    settings.LTI_TRUSTED_ISSUERS = []
    settings.SITE_URL = "https://caipi.uni.invalid"


@pytest.fixture
def dns(monkeypatch) -> dict[str, list[list[str]]]:
    """Answers per name, one list per lookup; the last answer repeats. Lookups are recorded."""
    answers: dict[str, list[list[str]]] = {}

    def resolve(host: str, port: int) -> list[str]:
        queue = answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    monkeypatch.setattr(registration_guard, "resolve", resolve)
    return answers


@pytest.fixture
def connections(monkeypatch, lms) -> list[tuple[str, int]]:
    """Every (host, port) CAIPI opens a TCP connection to; the public address reaches the LMS."""
    opened: list[tuple[str, int]] = []
    real: Callable[..., socket.socket] = urllib3.util.connection.create_connection
    lms_port = int(lms.base_url.rsplit(":", 1)[1])

    def create_connection(address, *args, **kwargs):
        opened.append(address)
        if address == (PUBLIC, lms_port):
            return real(("127.0.0.1", lms_port), *args, **kwargs)
        raise ConnectionRefusedError(f"test network: nothing at {address}")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return opened


@pytest.fixture
def public_lms(lms, dns, connections):
    """The test LMS under a public name: NAME resolves to PUBLIC, which reaches the LMS."""
    port = lms.base_url.rsplit(":", 1)[1]
    lms.base_url = f"http://{NAME}:{port}"
    dns[NAME] = [[PUBLIC]]
    return lms


def _register(client, lms, admin, **changes):
    url = registration_invite_create(created_by=admin)
    query = {
        "openid_configuration": lms.url("/mod/lti/openid-configuration.php"),
        "registration_token": lms.registration_token(),
        **changes,
    }
    return client.get(url.removeprefix("https://caipi.uni.invalid"), query)


def test_every_registration_fetch_connects_to_the_checked_address_and_keeps_the_name(
    client, db, admin, public_lms, connections
):
    response = _register(client, public_lms, admin)

    assert response.status_code == 200, response.content
    assert Platform.objects.get().issuer == public_lms.issuer
    port = int(public_lms.base_url.rsplit(":", 1)[1])
    # configuration, JWKS (token check), registration POST: three fetches, one address
    assert connections == [(PUBLIC, port)] * 3
    assert public_lms.hosts == [f"{NAME}:{port}"] * 3


def test_when_a_checked_address_does_not_answer_the_next_checked_address_is_tried(
    client, db, admin, public_lms, dns, connections
):
    dns[NAME] = [["93.184.215.15", PUBLIC]]  # the first refuses connections in the test network

    response = _register(client, public_lms, admin)

    assert response.status_code == 200, response.content
    port = int(public_lms.base_url.rsplit(":", 1)[1])
    assert connections == [("93.184.215.15", port), (PUBLIC, port)] * 3
    assert len(public_lms.registrations) == 1


def test_a_name_that_rebinds_to_loopback_after_the_check_never_reaches_loopback(
    client, db, admin, public_lms, dns, connections
):
    # Public for the first lookup, loopback for every later one (the rebinding attack).
    dns[NAME] = [[PUBLIC], ["127.0.0.1"]]

    response = _register(client, public_lms, admin)

    assert response.status_code == 400 and b"private_address" in response.content
    port = int(public_lms.base_url.rsplit(":", 1)[1])
    assert connections == [(PUBLIC, port)]  # the configuration, from the checked address
    assert not Platform.objects.exists() and public_lms.registrations == []


def test_a_name_with_any_private_address_among_its_answers_is_refused(dns, connections):
    dns[NAME] = [[PUBLIC, "169.254.169.254"]]

    with pytest.raises(LtiRefused) as refused:
        addresses_pin(url=f"https://{NAME}/mod/lti/openid-configuration.php")

    assert refused.value.code == "private_address"
    assert connections == []


def test_a_name_that_does_not_resolve_is_refused_as_unreachable(dns):
    dns[NAME] = [[]]

    with pytest.raises(LtiRefused) as refused:
        addresses_pin(url=f"https://{NAME}/mod/lti/openid-configuration.php")

    assert refused.value.code == "platform_unreachable"


def test_a_redirect_to_loopback_is_refused_and_not_followed(
    client, db, admin, public_lms, connections
):
    port = int(public_lms.base_url.rsplit(":", 1)[1])
    public_lms.redirects["/moved"] = f"http://127.0.0.1:{port}/mod/lti/openid-configuration.php"

    response = _register(client, public_lms, admin, openid_configuration=public_lms.url("/moved"))

    assert response.status_code == 400 and b"platform_unreachable" in response.content
    assert connections == [(PUBLIC, port)]
    assert not Platform.objects.exists()


def test_a_redirect_is_not_followed_even_where_private_addresses_are_allowed(
    client, db, admin, lms, settings
):
    settings.LTI_REGISTRATION_ALLOW_PRIVATE = True
    lms.redirects["/moved"] = lms.url("/mod/lti/openid-configuration.php")

    response = _register(client, lms, admin, openid_configuration=lms.url("/moved"))

    assert response.status_code == 400 and b"platform_unreachable" in response.content
    assert lms.hosts == [lms.base_url.removeprefix("http://")]  # only the redirecting request


def test_a_pinned_session_reaches_a_name_no_dns_knows_through_its_address(lms, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a proxy would resolve the name
    port = lms.base_url.rsplit(":", 1)[1]
    url = f"http://{NAME}:{port}/mod/lti/certs.php"

    with pinned_session(url=url, addresses=["127.0.0.1"]) as session:
        answer = session.get(url)

    assert answer.status_code == 200 and answer.json() == lms.jwks()
    assert lms.hosts == [f"{NAME}:{port}"]


def test_a_pinned_session_refuses_a_request_for_another_host(lms):
    port = lms.base_url.rsplit(":", 1)[1]

    session = pinned_session(url=f"http://{NAME}:{port}/", addresses=["127.0.0.1"])

    with session, pytest.raises(HttpError):
        session.get(f"http://other.uni.example:{port}/mod/lti/certs.php")

    assert lms.hosts == []


def _tls_server(tmp_path, cert_name: str):
    """An HTTPS server on loopback whose self-signed certificate names ``cert_name``; it records
    the SNI name each client sent. Returns (server, CA file, SNI names)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cert_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(cert_name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sni: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda _sock, name, _ctx: sni.append(name)

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = self.headers.get("Host", "").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, str(cert_file), sni


@pytest.fixture
def tls_server(tmp_path):
    servers = []

    def start(cert_name: str):
        started = _tls_server(tmp_path, cert_name)
        servers.append(started[0])
        return started

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_pinned_https_fetch_sends_the_name_as_sni_and_checks_the_certificate_for_it(
    tls_server,
):
    server, ca_file, sni = tls_server(NAME)
    url = f"https://{NAME}:{server.server_address[1]}/"

    with pinned_session(url=url, addresses=["127.0.0.1"]) as session:
        answer = session.get(url, verify=ca_file)

    assert answer.status_code == 200 and answer.text == f"{NAME}:{server.server_address[1]}"
    assert sni == [NAME]


def test_a_pinned_https_fetch_refuses_a_certificate_for_another_name(tls_server):
    server, ca_file, _ = tls_server("other.uni.example")
    url = f"https://{NAME}:{server.server_address[1]}/"
    session = pinned_session(url=url, addresses=["127.0.0.1"])

    with session, pytest.raises(HttpError):
        session.get(url, verify=ca_file)
