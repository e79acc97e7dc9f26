"""Who may read the operational details: ``/metrics`` and the checks of ``/readyz``.

Metrics and readiness details name internal hosts, versions and load; they are for the
monitoring system, not the internet. A request may read them when it comes from one of the
scrape networks (``CAIPI_SCRAPE_NETWORKS``, CIDRs; loopback by default) or carries the
scrape token (``CAIPI_SCRAPE_TOKEN``) as ``Authorization: Bearer <token>``. The client
address is the TCP peer (``REMOTE_ADDR``): a scraper reaches the process directly, and a
forwarded-for header would be the client's to choose.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def _from_scrape_network(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(tuple(settings.SCRAPE_NETWORKS)))


def _has_scrape_token(request: HttpRequest) -> bool:
    token = settings.SCRAPE_TOKEN
    if not token:
        return False
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def scrape_allowed(request: HttpRequest) -> bool:
    """True when ``request`` may read metrics and readiness details."""
    return _from_scrape_network(request.META.get("REMOTE_ADDR", "")) or _has_scrape_token(request)
