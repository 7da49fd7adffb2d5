"""Checks of ``APIAUTH`` itself and its plain settings: the dict, key format and headers,
trusted proxies, the scope registry, the credential cache and the encryption keys."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from apiauth import net
from apiauth.checks.common import scheme_enabled, whole
from apiauth.conf import DEFAULTS
from apiauth.crypto import CHECKSUM_LENGTH, PREFIX_RE, PUBLIC_ID_LENGTH, SECRET_LENGTH
from apiauth.scopes import SCOPE_RE

# Trusting more than a /16 of IPv4 or a /64 of IPv6 trusts hosts that are not proxies.
BROAD_PREFIX = {4: 16, 6: 64}
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", re.ASCII)
# Headers with a meaning of their own: a key there would be sent, logged or cached as that.
RESERVED_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "host",
        "content-type",
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "connection",
        "forwarded",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-proto",
        "x-real-ip",
        "user-agent",
        "referer",
        "origin",
        "accept",
    }
)
MAX_CREDENTIAL_LENGTH_LIMIT = 16384


@register(Tags.security)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = getattr(settings, "APIAUTH", {})
    if not isinstance(user, dict):
        return [
            Error(
                "APIAUTH must be a dict.",
                hint="Set APIAUTH = {...} with the keys listed in the settings reference.",
                id="apiauth.E001",
            )
        ]
    messages: list[CheckMessage] = []
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        messages.append(
            Error(
                f"Unknown APIAUTH setting(s): {', '.join(unknown)}.",
                hint=f"Known settings: {', '.join(sorted(DEFAULTS))}.",
                id="apiauth.E002",
            )
        )
    if not PREFIX_RE.fullmatch(str(user.get("KEY_PREFIX", DEFAULTS["KEY_PREFIX"]))):
        messages.append(
            Error(
                "APIAUTH['KEY_PREFIX'] must be 2-16 lowercase letters or digits, "
                "starting with a letter.",
                hint="Keys are '<prefix>_<public id>_<secret>': the prefix may not contain '_'.",
                id="apiauth.E003",
            )
        )
    messages += _check_proxies(user.get("TRUSTED_PROXIES", []))
    messages += _check_headers(user)
    messages += _check_scope_registry(user.get("SCOPES", DEFAULTS["SCOPES"]))
    messages += _check_credential_cache(user)
    messages += _check_encryption_keys(user)
    if user.get("KEY_QUERY_PARAM"):
        messages.append(
            Warning(
                "API keys are accepted in the query string.",
                hint="URLs end up in access logs, browser history and Referer headers: "
                "prefer the X-API-Key or Authorization header and unset KEY_QUERY_PARAM.",
                id="apiauth.W001",
            )
        )
    return messages


def _check_proxies(value: Any) -> list[CheckMessage]:
    if not isinstance(value, (list, tuple)):
        return [
            Error(
                "APIAUTH['TRUSTED_PROXIES'] must be a list of CIDR strings.",
                hint="For example ['10.0.0.0/8'] for a load balancer in your private network.",
                id="apiauth.E004",
            )
        ]
    messages: list[CheckMessage] = []
    for entry in value:
        if entry == net.UNIX_PEER:
            continue
        try:
            network = ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            messages.append(
                Error(
                    f"APIAUTH['TRUSTED_PROXIES'] entry {entry!r} is not an IP network.",
                    hint="Use CIDR notation such as '10.0.0.5/32' or '2001:db8::/64', or "
                    "'unix' for a proxy connecting over a unix socket.",
                    id="apiauth.E004",
                )
            )
            continue
        if network.prefixlen < BROAD_PREFIX[network.version]:
            messages.append(
                Warning(
                    f"APIAUTH['TRUSTED_PROXIES'] trusts {network}, which is very broad.",
                    hint="Any host in a trusted network can set the forwarding header and choose "
                    "its own client address, bypassing IP allowlists and per-IP limits. List "
                    "only your proxies' addresses.",
                    id="apiauth.W002",
                )
            )
    return messages


def _check_credential_cache(user: dict[str, Any]) -> list[CheckMessage]:
    ttl = user.get("CREDENTIAL_CACHE_TTL", DEFAULTS["CREDENTIAL_CACHE_TTL"])
    size = user.get("CREDENTIAL_CACHE_SIZE", DEFAULTS["CREDENTIAL_CACHE_SIZE"])
    ttl_ok = ttl is None or (
        isinstance(ttl, (int, float)) and not isinstance(ttl, bool) and 0 <= ttl <= 86_400
    )
    size_ok = isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 10_000_000
    if ttl_ok and size_ok:
        return []
    return [
        Error(
            "APIAUTH['CREDENTIAL_CACHE_TTL'] must be 0 to 86400 seconds and "
            "APIAUTH['CREDENTIAL_CACHE_SIZE'] a whole number from 1 to 10,000,000.",
            hint="The TTL bounds how long a change made without signals (QuerySet.update, raw "
            "SQL) can go unseen; 0 turns the cache off (one query per request).",
            id="apiauth.E017",
        )
    ]


def _check_encryption_keys(user: dict[str, Any]) -> list[CheckMessage]:
    from apiauth.encryption import decode_key

    keys = user.get("ENCRYPTION_KEYS", [])
    hint = (
        "List base64url-encoded 32-byte keys, the one that encrypts first; generate one with "
        "`manage.py apiauth_encryptionkey` and keep them out of the database and the code "
        "(an environment variable or a secrets manager)."
    )
    if not isinstance(keys, (list, tuple)):
        return [Error("APIAUTH['ENCRYPTION_KEYS'] must be a list.", hint=hint, id="apiauth.E018")]
    if not keys:
        if scheme_enabled("HMACAuthentication"):
            what = "HMACAuthentication is enabled"
        elif _issues_tokens(user):
            what = "an issuer in APIAUTH['JWT'] signs with our own keys"
        else:
            return []
        return [
            Error(
                f"{what} but APIAUTH['ENCRYPTION_KEYS'] is empty: HMAC secrets and private "
                "signing keys cannot be stored encrypted.",
                hint=hint,
                id="apiauth.E025",
            )
        ]
    messages: list[CheckMessage] = []
    for index, key in enumerate(keys):
        try:
            decode_key(key)
        except ValueError as exc:
            messages.append(
                Error(f"APIAUTH['ENCRYPTION_KEYS'][{index}]: {exc}.", hint=hint, id="apiauth.E018")
            )
            continue
        if key == getattr(settings, "SECRET_KEY", None):
            messages.append(
                Error(
                    f"APIAUTH['ENCRYPTION_KEYS'][{index}] is the SECRET_KEY.",
                    hint="An encryption key must be a key of its own: SECRET_KEY signs cookies "
                    "and reaches places (error reports, settings dumps) an encryption key must "
                    "not. " + hint,
                    id="apiauth.E026",
                )
            )
    if len(set(map(str, keys))) != len(keys):
        messages.append(
            Error("APIAUTH['ENCRYPTION_KEYS'] lists a key twice.", hint=hint, id="apiauth.E027")
        )
    return messages


def _issues_tokens(user: dict[str, Any]) -> bool:
    jwt = user.get("JWT")
    entries = jwt.get("ISSUERS") if isinstance(jwt, dict) else None
    return isinstance(entries, list) and any(
        isinstance(entry, dict) and entry.get("KEYS") == "local" for entry in entries
    )


def _check_scope_registry(registry: Any) -> list[CheckMessage]:
    if registry is None:
        registry = {}
    valid = isinstance(registry, dict) and all(
        isinstance(scope, str)
        and SCOPE_RE.fullmatch(scope)
        and "*" not in scope
        and isinstance(description, str)
        and description.strip()
        for scope, description in registry.items()
    )
    if valid:
        return []
    return [
        Error(
            "APIAUTH['SCOPES'] must map concrete scopes to their descriptions.",
            hint='For example {"orders:read": "Read orders", "orders:write": "Place orders"}; '
            "wildcards (orders:*) are offered by the admin as groups, not registered.",
            id="apiauth.E016",
        )
    ]


def _check_headers(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    key_header = user.get("KEY_HEADER", DEFAULTS["KEY_HEADER"])
    if (
        not isinstance(key_header, str)
        or not HEADER_NAME_RE.fullmatch(key_header)
        or key_header.lower() in RESERVED_HEADERS
    ):
        messages.append(
            Error(
                f"APIAUTH['KEY_HEADER'] {key_header!r} cannot carry API keys.",
                hint="Use a dedicated header name of letters, digits and hyphens (no "
                "underscores: servers drop such headers), not one with a meaning of its own "
                f"({', '.join(sorted(RESERVED_HEADERS))}). The default is 'X-API-Key'.",
                id="apiauth.E012",
            )
        )
    length = user.get("MAX_CREDENTIAL_LENGTH", DEFAULTS["MAX_CREDENTIAL_LENGTH"])
    prefix = str(user.get("KEY_PREFIX", DEFAULTS["KEY_PREFIX"]))
    shortest = len(prefix) + 2 + PUBLIC_ID_LENGTH + SECRET_LENGTH + CHECKSUM_LENGTH
    if not whole(length, shortest, MAX_CREDENTIAL_LENGTH_LIMIT):
        messages.append(
            Error(
                f"APIAUTH['MAX_CREDENTIAL_LENGTH'] must be a whole number from {shortest} (the "
                f"length of a key) to {MAX_CREDENTIAL_LENGTH_LIMIT}.",
                hint="Below a key's length every key is refused; the cap exists to refuse "
                "huge headers cheaply. The default is 512.",
                id="apiauth.E013",
            )
        )
    ip_header = user.get("CLIENT_IP_HEADER", DEFAULTS["CLIENT_IP_HEADER"])
    if (
        not isinstance(ip_header, str)
        or not HEADER_NAME_RE.fullmatch(ip_header)
        or ip_header.lower() in RESERVED_HEADERS - {"forwarded", "x-forwarded-for", "x-real-ip"}
    ):
        messages.append(
            Error(
                f"APIAUTH['CLIENT_IP_HEADER'] {ip_header!r} is not a forwarding header.",
                hint="Use 'X-Forwarded-For', 'Forwarded' (RFC 7239) or the single-address "
                "header your proxy sets, such as 'X-Real-IP'.",
                id="apiauth.E014",
            )
        )
    mode = user.get("FAILED_AUTH_LOCKOUT", DEFAULTS["FAILED_AUTH_LOCKOUT"])
    if mode not in {"failures", "all"}:
        messages.append(
            Error(
                "APIAUTH['FAILED_AUTH_LOCKOUT'] must be 'failures' or 'all'.",
                hint="'failures': a locked-out address still gets its valid credentials "
                "honoured; 'all': every credentialed request from it is refused.",
                id="apiauth.E015",
            )
        )
    if not isinstance(user.get("LIMIT_ADMIN_LOGIN", True), bool):
        messages.append(
            Error(
                "APIAUTH['LIMIT_ADMIN_LOGIN'] must be True or False.",
                hint="True puts the admin's login page under FAILED_AUTH_LIMITS.",
                id="apiauth.E033",
            )
        )
    return messages
