"""Client address resolution and IP allowlists.

:func:`get_client_ip` is the only place that reads ``REMOTE_ADDR`` or a forwarding header.

Trust model: the peer (``REMOTE_ADDR``) is the client unless it is one of our proxies, listed in
``APIAUTH["TRUSTED_PROXIES"]`` (CIDRs, and ``"unix"`` for a peer on a unix socket, which WSGI
servers report as an empty ``REMOTE_ADDR``). Only then is ``APIAUTH["CLIENT_IP_HEADER"]`` read:
``X-Forwarded-For`` or RFC 7239 ``Forwarded`` are walked from the right past our own proxies;
any other header name (``X-Real-IP``) holds the one address the nearest proxy saw. An entry that
cannot be parsed ends the walk with *no* client address: never the proxy's own, which would
turn every client into a trusted internal host.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils.translation import gettext as _
from rest_framework.request import Request

from apiauth.conf import conf

logger = logging.getLogger("apiauth")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_FORWARDED_HOPS = 20
MAX_ADDRESS_LENGTH = 64
MAX_FORWARDED_LENGTH = 4096
"""Only the right-most part of a forwarding header is read: ours; the rest is the client's."""
UNIX_PEER = "unix"
IPV6_CLIENT_PREFIX = 64

_PORT_RE = re.compile(r":[0-9]{1,5}", re.ASCII)
# RFC 7239 §4: forwarded-pair = token "=" ( token / quoted-string ), pairs joined by ";".
# No character may be matched by two adjacent parts (a value stops at white space), so a failed
# match is linear in the input.
_FORWARDED_PAIR_RE = re.compile(
    r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\]|\\.)*"|[^;,"\s]*)\s*'
)

requests_without_address = 0
"""Requests this process saw with no ``REMOTE_ADDR`` and no ``"unix"`` trust (check W009)."""


@lru_cache(maxsize=64)
def _networks(cidrs: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs if cidr != UNIX_PEER)


_IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_network(value: str) -> IPNetwork:
    """An allowlist entry as a network that client addresses can match.

    Client addresses lose their zone id and IPv4-mapped ones become IPv4
    (:func:`parse_address`), so entries are normalised alike: a mapped network is its IPv4
    network, and an entry with a zone id, which could never match, is refused.
    """
    try:
        if "%" in value:
            raise ValueError  # caught below: the zone id is refused like any invalid entry
        network = ipaddress.ip_network(value.strip(), strict=False)  # pragma: no mutate
    except ValueError:
        raise ValidationError(
            _("“%(value)s” is not an IPv4 or IPv6 address or CIDR network.")
            % {"value": value[:64]},
            code="invalid_network",
        ) from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_IPV4_MAPPED):
        mapped = int(network.network_address) & 0xFFFFFFFF
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def parse_networks(value: str | Iterable[str]) -> list[str]:
    """Validate and normalise allowlist entries (``10.0.0.0/8``, ``2001:db8::/32``, one address)."""
    items = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    return list(dict.fromkeys(str(parse_network(item)) for item in items if item.strip()))


@lru_cache(maxsize=1024)  # the same few addresses (peers, proxies) come again and again
def parse_address(value: str) -> IPAddress | None:
    """One address as servers and proxies write it, or ``None``.

    Accepts ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:443``, each optionally quoted (RFC 7239). An IPv6 zone id (``%eth0``) is
    dropped: it names an interface of the server, not the client. An IPv4-mapped IPv6 address
    is the IPv4 client seen through a dual-stack socket. ``unknown``, obfuscated identifiers
    (``_hidden``) and anything else are ``None``.
    """
    text = value.strip()
    if len(text) > MAX_ADDRESS_LENGTH:
        return None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    if text.startswith("["):
        host, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _PORT_RE.fullmatch(port)):
            return None
    elif text.count(":") == 1:
        host, port = text.split(":")
        if not _PORT_RE.fullmatch(":" + port):
            return None
    else:
        host = text
    if ":" in host:
        host = host.partition("%")[0]
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def in_networks(address: str | IPAddress | None, cidrs: Sequence[str]) -> bool:
    if address is None:
        return False
    ip = parse_address(address) if isinstance(address, str) else address
    if ip is None:
        return False
    return any(ip.version == net.version and ip in net for net in _networks(tuple(cidrs)))


def client_key(client_ip: str | None) -> str:
    """Who per-address limits count: the address, an IPv6 client's /64, or ``unknown``.

    One IPv6 host usually holds a whole /64 and can change address within it at will, so
    counting single IPv6 addresses would give an attacker 2**64 fresh identities.
    """
    if client_ip is None:
        return "unknown"
    if ":" in client_ip:
        # strict=False: the host bits are dropped (mutmut's strict=None is the same).
        network = ipaddress.ip_network(
            f"{client_ip}/{IPV6_CLIENT_PREFIX}", strict=False
        )  # pragma: no mutate
        return str(network)
    return client_ip


def forwarded_for(value: str) -> list[str | None]:
    """The ``for=`` values of an RFC 7239 ``Forwarded`` header, nearest last.

    Read from the right, where our proxies appended well-formed elements, and at most
    ``MAX_FORWARDED_HOPS`` of them: text a client wrote on the left (an unclosed quote, say)
    can only spoil its own element, never swallow the proxy's. An element without ``for`` (or
    one that does not parse) gives ``None``.
    """
    hops: list[str | None] = []
    for element in _elements_from_right(value[-MAX_FORWARDED_LENGTH:], MAX_FORWARDED_HOPS):
        found: str | None = None
        for pair in element.split(";"):
            match = _FORWARDED_PAIR_RE.fullmatch(pair)
            if match is None:
                found = None
                break
            if match.group(1).lower() == "for":
                found = match.group(2)
        hops.append(found)
    hops.reverse()
    return hops


def _elements_from_right(value: str, limit: int) -> list[str]:
    """Up to ``limit`` comma-separated elements, right-most first, commas in quotes kept."""
    elements: list[str] = []
    end, quoted = len(value), False
    for index in range(len(value) - 1, -1, -1):
        char = value[index]
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            elements.append(value[index + 1 : end])
            end = index
            if len(elements) == limit:
                return elements
    elements.append(value[:end])
    return elements[:limit]


def _forwarded_hops(request: HttpRequest | Request, header: str) -> list[str | None] | None:
    """The hops the configured header names, nearest last; ``None`` when it is absent."""
    value = request.META.get("HTTP_" + header.upper().replace("-", "_"))
    if value is None or not value.strip():
        return None
    name = header.lower()
    if name == "forwarded":
        return forwarded_for(value)
    if name == "x-forwarded-for":
        hops: list[str | None] = list(value[-MAX_FORWARDED_LENGTH:].split(","))
        return hops[-MAX_FORWARDED_HOPS:]
    # A single-address header (X-Real-IP): exactly one value, written by our nearest proxy.
    return [value]


def get_client_ip(request: HttpRequest | Request) -> str | None:
    """The address of the client, trusting forwarding headers only from trusted proxies.

    Walked from the right, skipping our own proxies: the first address that is not a trusted
    proxy is the client. Anything left of it was written by the client and may be forged, so it
    is never used. ``None`` when the client cannot be known: it matches no allowlist, and
    per-address limits count it as one shared ``unknown`` identity.
    """
    # Remembered on Django's request, which DRF's wraps: both see it, and DRF's attribute
    # fallback (an exception per miss) is not paid.
    http_request: HttpRequest = getattr(request, "_request", request)
    cached: str | None = http_request.__dict__.get("_apiauth_client_ip", "")
    if cached != "":
        return cached
    result = _resolve(http_request)
    http_request._apiauth_client_ip = result  # type: ignore[attr-defined]
    return result


@lru_cache(maxsize=1024)
def _peer(text: str, trusted: tuple[str, ...]) -> tuple[str | None, bool]:
    """``REMOTE_ADDR`` read once per value: the address (normalised), and whether it is one of
    our proxies."""
    address = parse_address(text)
    if address is None:
        return None, False
    return str(address), in_networks(address, trusted)


def _resolve(request: HttpRequest | Request) -> str | None:
    global requests_without_address
    trusted = tuple(conf.TRUSTED_PROXIES)
    peer_text = (request.META.get("REMOTE_ADDR") or "").strip()
    peer: str | None = None
    if peer_text:
        peer, is_proxy = _peer(peer_text, trusted)
        if not is_proxy:
            return peer
    elif UNIX_PEER not in trusted:
        if requests_without_address == 0:
            logger.warning(
                "apiauth.W009: a request arrived with no REMOTE_ADDR (a unix socket?) and "
                "APIAUTH['TRUSTED_PROXIES'] does not trust 'unix': its client address is unknown."
            )
        requests_without_address += 1
        return None
    hops = _forwarded_hops(request, conf.CLIENT_IP_HEADER)
    if hops is None:
        # The proxy itself is the client (a load balancer's health check); behind a unix
        # socket nothing says who the client is.
        return peer
    ip: IPAddress | None = None
    for hop in reversed(hops[-MAX_FORWARDED_HOPS:]):
        ip = parse_address(hop) if hop is not None else None
        if ip is None or not in_networks(ip, trusted):
            break
    # The first hop that is not one of our proxies; if all are, the left-most read.
    return str(ip) if ip is not None else None
