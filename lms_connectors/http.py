"""The one way CAIPI talks HTTP to an LMS: a ``requests`` session with a timeout.

``requests`` because pylti1p3 takes a ``requests.Session`` for its own calls (platform JWKS,
access tokens, names-and-roles, grades); registration and the Moodle web services client use
the same session type, so every call to an LMS shares one timeout, one User-Agent and one
error type (``requests.RequestException``).

``pinned_session`` is the session for addresses CAIPI has checked (dynamic registration): its
connections go to the addresses that were checked, never to a second resolution of the name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError

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
    """Opens every connection for requests to ``host`` to one of ``addresses`` (the checked
    result of resolving it), in their order, as a client connecting by name would, but
    without resolving the name again (a DNS-rebinding guard).

    The URL, the Host header, TLS SNI and the certificate's host-name check keep the name;
    only the TCP connection goes to a pinned address. The next address is tried only when
    the connection could not be opened (nothing was sent). Requests for any other host, and
    proxies from the environment (a proxy would resolve the name again), are refused.
    """

    def __init__(self, *, host: str, addresses: Sequence[str]) -> None:
        if not addresses:
            raise ValueError("no address to pin")
        self.pinned_host = host.lower().strip("[]")
        self.pinned_addresses = tuple(addresses)
        self._address = self.pinned_addresses[0]
        super().__init__(max_retries=0)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> Any:  # requests' own (private) TypedDicts know no ``server_hostname``
        host_params, tls_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if str(host_params["host"]).lower().strip("[]") != self.pinned_host:
            raise requests.ConnectionError("host is not the pinned host", request=request)
        host_params["host"] = self._address
        pool_kwargs: dict[str, Any] = dict(tls_kwargs)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = self.pinned_host  # SNI and the certificate check
        return host_params, pool_kwargs

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        kwargs["proxies"] = {}
        netloc = urlsplit(request.url or "").netloc
        request.headers["Host"] = netloc.rpartition("@")[2]
        *others, last = self.pinned_addresses
        for address in others:
            self._address = address
            try:
                return super().send(request, *args, **kwargs)
            except requests.ConnectionError as exc:
                if not _not_connected(exc):
                    raise
        self._address = last
        return super().send(request, *args, **kwargs)


def _not_connected(exc: requests.ConnectionError) -> bool:
    """True when the connection itself failed (refused, unreachable, timed out): nothing sent."""
    reason = getattr(exc.args[0] if exc.args else None, "reason", None)
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is one too


def pinned_session(*, url: str, addresses: Sequence[str]) -> requests.Session:
    """A session (as ``lms_session``) that connects only to ``addresses`` and only for ``url``'s
    host, which must not redirect; ``addresses`` are the checked result of resolving that host."""
    session = lms_session()
    session.max_redirects = 0
    adapter = PinnedAdapter(host=urlsplit(url).hostname or "", addresses=addresses)
    session.adapters.clear()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
