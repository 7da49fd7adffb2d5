"""Client address resolution and IP allowlists.

:func:`get_client_ip` is the only place that reads ``REMOTE_ADDR`` or ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.request import Request

from apiauth.conf import conf

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_FORWARDED_HOPS = 20


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def parse_network(value: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValidationError(
            _("“%(value)s” is not an IPv4 or IPv6 address or CIDR network.")
            % {"value": value[:64]},
            code="invalid_network",
        ) from None


def parse_networks(value: str | Iterable[str]) -> list[str]:
    """Validate and normalise allowlist entries (``10.0.0.0/8``, ``2001:db8::/32``, one address)."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    seen: dict[str, None] = {}
    for item in items:
        if item.strip():
            seen[str(parse_network(item))] = None
    return list(seen)


def _parse_ip(value: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    # An IPv4-mapped IPv6 address is the IPv4 client seen through a dual-stack socket.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def in_networks(address: str | IPAddress | None, cidrs: Sequence[str]) -> bool:
    if address is None:
        return False
    ip = _parse_ip(address) if isinstance(address, str) else address
    if ip is None:
        return False
    return any(ip.version == net.version and ip in net for net in _networks(tuple(cidrs)))


def get_client_ip(request: HttpRequest | Request) -> str | None:
    """The address of the client, trusting ``X-Forwarded-For`` only from trusted proxies.

    The header is walked from the right, skipping our own proxies: the first address that is
    not a trusted proxy is the client. Anything left of it was written by the client and may be
    forged, so it is never used.
    """
    cached: str | None = getattr(request, "_apiauth_client_ip", "")
    if cached != "":
        return cached
    remote = _parse_ip(request.META.get("REMOTE_ADDR", ""))
    client = remote
    trusted = tuple(conf.TRUSTED_PROXIES)
    if remote is not None and trusted and in_networks(remote, trusted):
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        for hop in reversed(forwarded.split(",")[-MAX_FORWARDED_HOPS:]):
            ip = _parse_ip(hop)
            if ip is None:
                break
            client = ip
            if not in_networks(ip, trusted):
                break
    result = str(client) if client is not None else None
    request._apiauth_client_ip = result  # type: ignore[union-attr]
    return result
