"""The one way CAIPI talks HTTP to an LMS: a ``requests`` session with a timeout.

``requests`` because pylti1p3 takes a ``requests.Session`` for its own calls (platform JWKS,
access tokens, names-and-roles, grades); registration and the Moodle web services client use
the same session type, so every call to an LMS shares one timeout, one User-Agent and one
error type (``requests.RequestException``).

``pinned_session`` is the session for addresses CAIPI has checked (dynamic registration): its
connections go to the one address that was checked, never to a second resolution of the name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

HttpError = requests.RequestException
LmsSession = requests.Session


class TimeoutSession(requests.Session):
    """A session whose every call has a timeout (LTI_HTTP_TIMEOUT) unless the caller sets one."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", settings.LTI_HTTP_TIMEOUT)
        return super().request(*args, **kwargs)


def lms_session() -> requests.Session:
    """A new session for calls to an LMS; close it (or use it in ``with``) when done."""
    session = TimeoutSession()
    session.headers["User-Agent"] = "CAIPI-LTI"
    return session


class PinnedAdapter(HTTPAdapter):
    """Opens every connection to ``address`` for requests to ``host`` (a DNS-rebinding guard).

    The URL, the Host header, TLS SNI and the certificate's host-name check keep the name;
    only the TCP connection goes to the pinned address. Requests for any other host, and
    proxies from the environment (a proxy would resolve the name again), are refused.
    """

    def __init__(self, *, host: str, address: str) -> None:
        self.pinned_host = host.lower()
        self.pinned_address = address
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:  # requests' own (private) TypedDicts know no ``server_hostname``
        host_params, tls_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if str(host_params["host"]).lower().strip("[]") != self.pinned_host.strip("[]"):
            raise requests.ConnectionError("host is not the pinned host", request=request)
        host_params["host"] = self.pinned_address
        pool_kwargs: dict[str, Any] = dict(tls_kwargs)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.pinned_host.strip("[]")  # SNI and cert check
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        kwargs["proxies"] = {}
        netloc = urlsplit(request.url or "").netloc
        request.headers["Host"] = netloc.rpartition("@")[2]
        return super().send(request, *args, **kwargs)


def pinned_session(*, url: str, address: str) -> requests.Session:
    """A session (as ``lms_session``) that connects only to ``address`` and only for ``url``'s
    host, which must not redirect; ``address`` is the checked result of resolving that host."""
    session = lms_session()
    session.max_redirects = 0
    adapter = PinnedAdapter(host=urlsplit(url).hostname or "", address=address)
    session.adapters.clear()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
