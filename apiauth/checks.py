"""System checks for apiauth's configuration, registered under ``Tags.security``.

Ids are stable and never reused; each has one test.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.module_loading import import_string

from apiauth import net
from apiauth.conf import DEFAULTS
from apiauth.crypto import CHECKSUM_LENGTH, PREFIX_RE, PUBLIC_ID_LENGTH, SECRET_LENGTH
from apiauth.scopes import SCOPE_RE, unregistered
from apiauth.store import uses_redis
from apiauth.throttling.rates import MAX_COST, InvalidLimit, Limit, parse_limits

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
MAX_BREAKER_SECONDS = 300
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
    messages += _check_limits(user)
    messages += _check_credential_cache(user)
    messages += _check_encryption_keys(user)
    messages += _check_hmac(user.get("HMAC") or {})
    messages += _check_jwt(user.get("JWT") or {})
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
        if _authentication_in_use("apiauth.authentication.HMACAuthentication"):
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
                id="apiauth.E018",
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
                    id="apiauth.E018",
                )
            )
    if len(set(map(str, keys))) != len(keys):
        messages.append(
            Error("APIAUTH['ENCRYPTION_KEYS'] lists a key twice.", hint=hint, id="apiauth.E018")
        )
    return messages


def _check_hmac(value: Any) -> list[CheckMessage]:
    from apiauth.conf import HMAC_DEFAULTS

    def error(message: str, hint: str) -> list[CheckMessage]:
        return [Error(f"APIAUTH['HMAC']: {message}", hint=hint, id="apiauth.E019")]

    if not isinstance(value, dict):
        return error("must be a dict.", "See the HMAC section of the settings reference.")
    unknown = sorted(set(value) - set(HMAC_DEFAULTS))
    if unknown:
        return error(
            f"unknown key(s) {', '.join(map(str, unknown))}.",
            f"Known keys: {', '.join(sorted(HMAC_DEFAULTS))}.",
        )
    merged = {**HMAC_DEFAULTS, **value}
    scope_part = re.compile(r"[a-z0-9][a-z0-9-]{0,63}", re.ASCII)
    name = re.compile(r"[A-Z0-9][A-Z0-9-]{1,31}", re.ASCII)
    regions = merged["REGIONS"]
    if not isinstance(merged["SERVICE"], str) or not scope_part.fullmatch(merged["SERVICE"]):
        return error(
            "SERVICE must be lowercase letters, digits and '-'.", "The default: 'apiauth'."
        )
    if (
        not isinstance(regions, (list, tuple))
        or not regions
        or not all(isinstance(r, str) and scope_part.fullmatch(r) for r in regions)
    ):
        return error("REGIONS must list lowercase region names.", "The default: ['global'].")
    if not isinstance(merged["ALGORITHM"], str) or not name.fullmatch(merged["ALGORITHM"]):
        return error("ALGORITHM must be uppercase letters, digits and '-'.", "'AWS4-HMAC-SHA256'")
    if not isinstance(merged["SECRET_PREFIX"], str) or not name.fullmatch(merged["SECRET_PREFIX"]):
        return error("SECRET_PREFIX must be uppercase letters, digits and '-'.", "'AWS4'")
    prefix = merged["HEADER_PREFIX"]
    if not isinstance(prefix, str) or not re.fullmatch(r"X-[A-Za-z0-9]{1,16}-", prefix):
        return error("HEADER_PREFIX must read like 'X-Amz-'.", "For example 'X-Acme-'.")
    bounds = {
        "MAX_CLOCK_SKEW": (1, 900),
        "MAX_BODY_SIZE": (0, 1 << 31),
        "MAX_HEADER_SIZE": (256, 65536),
        "PRESIGNED_MAX_EXPIRES": (1, 604_800),
        "ROTATION_GRACE": (0, 30 * 86_400),
    }
    for key, (low, high) in bounds.items():
        number = merged[key]
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            return error(
                f"{key} must be a whole number from {low} to {high}.",
                "MAX_CLOCK_SKEW is seconds either way of the server's clock (SigV4 uses 300, "
                "15 minutes at most); PRESIGNED_MAX_EXPIRES at most 7 days, as AWS.",
            )
    return []


def _issues_tokens(user: dict[str, Any]) -> bool:
    jwt = user.get("JWT")
    entries = jwt.get("ISSUERS") if isinstance(jwt, dict) else None
    return isinstance(entries, list) and any(
        isinstance(entry, dict) and entry.get("KEYS") == "local" for entry in entries
    )


def _check_jwt(value: Any) -> list[CheckMessage]:
    from apiauth import issuers, jose
    from apiauth.conf import JWT_DEFAULTS

    def error(message: str, hint: str, id: str = "apiauth.E020") -> list[CheckMessage]:
        return [Error(f"APIAUTH['JWT']: {message}", hint=hint, id=id)]

    if not isinstance(value, dict):
        return error("must be a dict.", "See the JWT section of the settings reference.")
    unknown = sorted(set(value) - set(JWT_DEFAULTS))
    if unknown:
        return error(
            f"unknown key(s) {', '.join(map(str, unknown))}.",
            f"Known keys: {', '.join(sorted(JWT_DEFAULTS))}.",
        )
    merged = {**JWT_DEFAULTS, **value}
    bounds = {
        "LEEWAY": (0, 300),
        "MAX_TOKEN_LENGTH": (512, 65_536),
        "MAX_TOKEN_LIFETIME": (60, 30 * 86_400),
        "ACCESS_TOKEN_LIFETIME": (30, 86_400),
        "KEY_RING_TTL": (0, 3600),
        "JWKS_MAX_AGE": (0, 86_400),
        "REFRESH_TOKEN_LIFETIME": (60, 365 * 86_400),
        "REFRESH_FAMILY_LIFETIME": (60, 365 * 86_400),
        "JWKS_MIN_CACHE": (0, 86_400),
        "JWKS_MAX_CACHE": (60, 7 * 86_400),
        "JWKS_REFRESH_INTERVAL": (1, 3600),
        "JWKS_MAX_BYTES": (1024, 10 * 1024 * 1024),
        "VERIFIED_CACHE_SIZE": (0, 1_000_000),
    }
    counts = {"MAX_TOKEN_LENGTH", "JWKS_MAX_BYTES", "VERIFIED_CACHE_SIZE"}
    for key, (low, high) in bounds.items():
        number = merged[key]
        if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
            unit = "See the settings reference." if key in counts else "In seconds."
            return error(f"{key} must be a whole number from {low} to {high}.", unit)
    if merged["ACCESS_TOKEN_LIFETIME"] > merged["MAX_TOKEN_LIFETIME"]:
        return error(
            "ACCESS_TOKEN_LIFETIME exceeds MAX_TOKEN_LIFETIME.",
            "Our own tokens would be refused: raise MAX_TOKEN_LIFETIME or shorten them.",
        )
    if merged["SIGNING_ALGORITHM"] not in jose.SIGNING_ALGORITHMS:
        return error(
            "SIGNING_ALGORITHM must be one of " + ", ".join(jose.SIGNING_ALGORITHMS) + ".",
            "ES256 is the default: small tokens, fast to verify.",
        )
    if merged["RSA_KEY_SIZE"] not in (2048, 3072):
        return error("RSA_KEY_SIZE must be 2048 or 3072.", "2048 is the default.")
    if merged["REVOCATION_FAILURE_MODE"] not in ("database", "open", "closed"):
        return error(
            "REVOCATION_FAILURE_MODE must be 'database', 'open' or 'closed'.",
            "'database' (the default) asks the database, the source of truth of revocations.",
        )
    entries = merged["ISSUERS"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        return error("ISSUERS must be a list of dicts.", "See the settings reference.")
    messages: list[CheckMessage] = []
    seen: set[str] = set()
    for index, entry in enumerate(entries):
        where = f"ISSUERS[{index}]"
        if not isinstance(entry.get("ISSUER"), str) or not entry["ISSUER"]:
            messages += error(f"{where} has no ISSUER.", "The exact 'iss' of its tokens.")
            continue
        if entry["ISSUER"] in seen:
            messages += error(f"{where} repeats {entry['ISSUER']!r}.", "One entry per issuer.")
        seen.add(entry["ISSUER"])
        unknown_keys = sorted(set(entry) - ISSUER_KEYS)
        if unknown_keys:
            messages += error(
                f"{where}: unknown key(s) {', '.join(unknown_keys)}.",
                f"Known keys: {', '.join(sorted(ISSUER_KEYS))}.",
            )
            continue
        try:
            issuers.build(entry)
        except jose.InvalidKey as exc:
            if "SECRET" in entry:
                messages += error(
                    f"{where}: the HS256 secret is unusable: {exc}.",
                    "Use at least 32 random bytes, never a public key; prefer an asymmetric "
                    "algorithm so verifiers hold no secret.",
                    id="apiauth.E021",
                )
            else:
                messages += error(f"{where}: {exc}.", "Keys must fit their algorithm.")
        except (ValueError, KeyError, TypeError) as exc:
            messages += error(f"{where}: {exc}.", "See the JWT section of the settings reference.")
    if sum(1 for entry in entries if entry.get("KEYS") == "local") > 1:
        messages += error(
            "more than one issuer has KEYS 'local'.", "Our signing keys make one issuer."
        )
    return messages


ISSUER_KEYS = frozenset(
    {
        "ISSUER",
        "AUDIENCES",
        "ALGORITHMS",
        "KEYS",
        "JWKS_URL",
        "SECRET",
        "TYP",
        "REQUIRED_CLAIMS",
        "USER_FIELD",
        "USER_CLAIM",
        "PLAN",
    }
)


def _authentication_in_use(path: str) -> bool:
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    return path in list(rest.get("DEFAULT_AUTHENTICATION_CLASSES", []))


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
    if not _whole(length, shortest, MAX_CREDENTIAL_LENGTH_LIMIT):
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
    return messages


def _check_limits(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    plans = user.get("PLANS", {})
    if not isinstance(plans, dict):
        plans = {}
        messages.append(
            Error(
                "APIAUTH['PLANS'] must be a dict of plan name to limits.",
                hint='For example {"free": {"rate": "60/min", "burst": 10, "quotas": '
                '["1000/day"]}}.',
                id="apiauth.E005",
            )
        )
    for name, spec in plans.items():
        try:
            parse_limits(spec)
        except InvalidLimit as exc:
            messages.append(
                Error(
                    f"APIAUTH['PLANS'][{name!r}] is invalid: {exc}",
                    hint='Write a plan as {"rate": "60/min", "burst": 10, "quotas": ["1000/day"]}.',
                    id="apiauth.E005",
                )
            )
    default = user.get("DEFAULT_PLAN")
    if default and default not in plans:
        messages.append(
            Error(
                f"APIAUTH['DEFAULT_PLAN'] {default!r} is not in APIAUTH['PLANS'].",
                hint="Name one of the plans, or leave DEFAULT_PLAN unset.",
                id="apiauth.E006",
            )
        )
    specs = {
        "ANONYMOUS_LIMITS": user.get("ANONYMOUS_LIMITS", DEFAULTS["ANONYMOUS_LIMITS"]),
        "FAILED_AUTH_LIMITS": user.get("FAILED_AUTH_LIMITS", DEFAULTS["FAILED_AUTH_LIMITS"]),
    }
    scope_rates = user.get("SCOPE_RATES", {})
    if isinstance(scope_rates, dict):
        specs.update({f"SCOPE_RATES'][{k!r}": v for k, v in scope_rates.items()})
    else:
        messages.append(
            Error(
                "APIAUTH['SCOPE_RATES'] must be a dict of throttle_scope to limits.",
                hint='For example {"uploads": "10/min"}.',
                id="apiauth.E007",
            )
        )
    for setting, spec in specs.items():
        if spec is None and setting in ("ANONYMOUS_LIMITS", "FAILED_AUTH_LIMITS"):
            continue
        try:
            parse_limits(spec)
        except InvalidLimit as exc:
            messages.append(
                Error(
                    f"APIAUTH['{setting}'] is invalid: {exc}",
                    hint="Use a rate string such as '60/min' or a dict with rate, burst, quotas; "
                    "None disables anonymous or failed-authentication limits.",
                    id="apiauth.E007",
                )
            )
    messages += _check_costs(user, plans, scope_rates if isinstance(scope_rates, dict) else {})
    breaker = user.get("RATELIMIT_BREAKER_SECONDS", DEFAULTS["RATELIMIT_BREAKER_SECONDS"])
    if (
        not isinstance(breaker, (int, float))
        or isinstance(breaker, bool)
        or not 0 < breaker <= MAX_BREAKER_SECONDS
    ):
        messages.append(
            Error(
                f"APIAUTH['RATELIMIT_BREAKER_SECONDS'] must be a number of seconds above 0 and "
                f"at most {MAX_BREAKER_SECONDS}.",
                hint="It is how long a Redis outage is assumed to last before trying again: "
                "long values keep limits off (or every request refused) long after Redis is "
                "back. The default is 5.",
                id="apiauth.E010",
            )
        )
    prefix = user.get("RATELIMIT_KEY_PREFIX", DEFAULTS["RATELIMIT_KEY_PREFIX"])
    if not isinstance(prefix, str) or not prefix.isprintable() or {"{", "}"} & set(prefix):
        messages.append(
            Error(
                "APIAUTH['RATELIMIT_KEY_PREFIX'] must be a string of printable characters "
                "without '{' or '}'.",
                hint="Each credential's keys share a Redis Cluster hash tag ({...}) after the "
                "prefix: braces in the prefix would become the tag of every key, putting all "
                "limits in one slot and making a reset of one credential match the others'.",
                id="apiauth.E022",
            )
        )
    if _throttle_in_use() and not default:
        messages.append(
            Warning(
                "API keys without a plan are not rate limited: APIAUTH['DEFAULT_PLAN'] is not set.",
                hint="Define a plan in APIAUTH['PLANS'] and name it in DEFAULT_PLAN, so that "
                "no key is unlimited by omission.",
                id="apiauth.W007",
            )
        )
    backend = user.get("RATELIMIT_BACKEND", DEFAULTS["RATELIMIT_BACKEND"])
    mode = user.get("RATELIMIT_FAILURE_MODE", DEFAULTS["RATELIMIT_FAILURE_MODE"])
    alias = user.get("RATELIMIT_CACHE", DEFAULTS["RATELIMIT_CACHE"])
    url = user.get("REDIS_URL")
    messages += _check_store(user, url, mode)
    if backend not in {"auto", "redis", "local"} or mode not in {"open", "closed", "local"}:
        messages.append(
            Error(
                "APIAUTH['RATELIMIT_BACKEND'] must be 'auto', 'redis' or 'local', and "
                "APIAUTH['RATELIMIT_FAILURE_MODE'] 'local', 'open' or 'closed'.",
                hint="'auto' uses Redis when REDIS_URL is set or the cache alias is a "
                "django-redis cache.",
                id="apiauth.E008",
            )
        )
    elif not url and alias not in settings.CACHES:
        messages.append(
            Error(
                f"APIAUTH['RATELIMIT_CACHE'] {alias!r} is not in CACHES.",
                hint="Name the django-redis cache alias whose Redis holds the buckets.",
                id="apiauth.E008",
            )
        )
    elif _throttle_in_use() and (
        backend == "local" or (backend == "auto" and not url and not uses_redis(alias))
    ):
        messages.append(
            Warning(
                "Rate limits are kept in each process's memory.",
                hint=f"CACHES[{alias!r}] is not a django-redis cache, so every worker keeps "
                "its own buckets and N workers admit up to N times each limit. Set "
                "APIAUTH['REDIS_URL'] or point APIAUTH['RATELIMIT_CACHE'] at a django-redis cache.",
                id="apiauth.W005",
            )
        )
    return messages


def _check_store(user: dict[str, Any], url: Any, mode: Any) -> list[CheckMessage]:
    """The store's own client (``REDIS_URL``, ``REDIS_OPTIONS``) and the failure mode's
    settings."""
    from apiauth.store.clients import InvalidRedisURL, validate

    messages: list[CheckMessage] = []
    options = user.get("REDIS_OPTIONS", {})
    if url is not None:
        problem = None
        if not isinstance(url, str) or not isinstance(options, dict):
            problem = "REDIS_URL must be a string and REDIS_OPTIONS a dict"
        else:
            try:
                validate(url)
            except InvalidRedisURL as exc:
                problem = str(exc)
        if problem is not None:
            messages.append(
                Error(
                    f"APIAUTH['REDIS_URL'] cannot be used: {problem}.",
                    hint="redis://host:6379/0, redis+sentinel://host:26379,host:26380/service "
                    "or redis+cluster://host:7000,host:7001 (see docs/deployment.md).",
                    id="apiauth.E023",
                )
            )
    processes = user.get("RATELIMIT_LOCAL_PROCESSES", DEFAULTS["RATELIMIT_LOCAL_PROCESSES"])
    if not isinstance(processes, int) or isinstance(processes, bool) or processes < 1:
        messages.append(
            Error(
                "APIAUTH['RATELIMIT_LOCAL_PROCESSES'] must be a whole number of at least 1.",
                hint="The number of processes serving the API on all app servers together: "
                "each enforces that share of every limit while Redis is unavailable.",
                id="apiauth.E024",
            )
        )
    if mode == "open" and _throttle_in_use():
        messages.append(
            Warning(
                "Rate limits are off whenever Redis is unavailable (RATELIMIT_FAILURE_MODE "
                "is 'open'): a failover admits every request.",
                hint="'local' (the default) keeps each process to its share of every limit "
                "until Redis is back.",
                id="apiauth.W010",
            )
        )
    return messages


def _limits_of(spec: Any, name: str = "burst") -> tuple[Limit, ...]:
    try:
        return parse_limits(spec, name=name) if spec else ()
    except InvalidLimit:
        return ()  # reported by the limit checks


def _whole(value: Any, low: int, high: int) -> bool:
    """A whole number (not a bool, not a float) from ``low`` to ``high``."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _common_limits(user: dict[str, Any], plans: Mapping[str, Any]) -> list[tuple[str, Limit]]:
    """Every plan's limits and the anonymous ones (each named for messages): what any request
    may meet, whatever its view."""
    anonymous = user.get("ANONYMOUS_LIMITS", DEFAULTS["ANONYMOUS_LIMITS"])
    return [
        *(
            (f"PLANS[{name!r}]", limit)
            for name, spec in plans.items()
            for limit in _limits_of(spec)
        ),
        *(("ANONYMOUS_LIMITS", limit) for limit in _limits_of(anonymous)),
    ]


def _check_costs(
    user: dict[str, Any], plans: Mapping[str, Any], scope_rates: Mapping[str, Any]
) -> list[CheckMessage]:
    """Costs are whole numbers that every limit a request meets can hold."""
    cost = user.get("UNSAFE_METHOD_COST", DEFAULTS["UNSAFE_METHOD_COST"])
    if not _whole(cost, 1, MAX_COST):
        return [
            Error(
                f"APIAUTH['UNSAFE_METHOD_COST'] must be a whole number from 1 to {MAX_COST}.",
                hint="It is how many units a POST, PUT, PATCH or DELETE takes; below 1 a "
                "request would give units back.",
                id="apiauth.E009",
            )
        ]
    where = _common_limits(user, plans)
    where += [
        (f"SCOPE_RATES[{scope!r}]", limit)
        for scope, spec in scope_rates.items()
        for limit in _limits_of(spec, scope)
    ]
    return [
        Error(
            f"APIAUTH['UNSAFE_METHOD_COST'] ({cost}) is more than APIAUTH['{name}'] ever holds "
            f"({limit.name}: {limit.capacity}): unsafe requests would never be admitted.",
            hint="Raise that limit's burst or quota, or lower the cost.",
            id="apiauth.E009",
        )
        for name, limit in where
        if limit.capacity < cost
    ]


def _views() -> Iterator[tuple[str, Any]]:
    """Every class-based view the root URLconf reaches, with its route."""

    def walk(patterns: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "cls", None) or getattr(
                    pattern.callback, "view_class", None
                )
                if view is not None:
                    yield prefix + str(pattern.pattern), view

    yield from walk(get_resolver().url_patterns, "/")


@register(Tags.security)
def check_views(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Views' ``throttle_cost`` (whole numbers of at least 1 that the limits can hold, the
    view's own ``SCOPE_RATES`` included) and, with a scope registry, their ``required_scopes``."""
    user = getattr(settings, "APIAUTH", {})
    if not isinstance(user, dict):
        return []
    plans = user.get("PLANS", {}) if isinstance(user.get("PLANS", {}), dict) else {}
    capacities = [limit.capacity for _name, limit in _common_limits(user, plans)]
    scope_rates = user.get("SCOPE_RATES", {})
    scope_rates = scope_rates if isinstance(scope_rates, dict) else {}
    registry = user.get("SCOPES") or {}
    messages: list[CheckMessage] = []
    for route, view in _views():
        if isinstance(registry, dict) and registry:
            messages += _check_required_scopes(route, view, registry)
        declared = getattr(view, "throttle_cost", None)
        if declared is None:
            continue
        scope = getattr(view, "throttle_scope", None)
        own = [limit.capacity for limit in _limits_of(scope_rates.get(scope), str(scope))]
        smallest = min([*capacities, *own], default=MAX_COST)
        costs = declared.values() if isinstance(declared, Mapping) else [declared]
        for cost in costs:
            if not _whole(cost, 1, smallest):
                messages.append(
                    Error(
                        f"{view.__module__}.{view.__qualname__} ({route}) declares "
                        f"throttle_cost {cost!r}.",
                        hint=f"A cost is a whole number from 1 to {smallest}, the smallest "
                        "burst or quota a request may meet; a larger one is never admitted.",
                        obj=view,
                        id="apiauth.E011",
                    )
                )
    return messages


def _check_required_scopes(route: str, view: Any, registry: dict[str, str]) -> list[CheckMessage]:
    declared = getattr(view, "required_scopes", None) or ()
    groups = declared.values() if isinstance(declared, Mapping) else [declared]
    required = sorted({scope for group in groups for scope in group if isinstance(scope, str)})
    unknown = unregistered(required, registry)
    if not unknown:
        return []
    return [
        Warning(
            f"{view.__module__}.{view.__qualname__} ({route}) requires scope(s) missing from "
            f"APIAUTH['SCOPES']: {', '.join(unknown)}.",
            hint="No credential can be issued with an unregistered scope, so the view is out of "
            "reach: fix the typo or register the scope.",
            obj=view,
            id="apiauth.W008",
        )
    ]


@register(Tags.security)
def check_requests_seen(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """What this process has seen: requests with no client address and no unix trust.

    A runtime check: ``manage.py check`` and the server's start-up checks run before any
    request, so in a deployment the signal is the warning ``apiauth.net`` logs (once per
    process, same id) on the first such request; this reports it wherever checks run later.
    """
    trusted = getattr(settings, "APIAUTH", {}) or {}
    if not net.requests_without_address or (
        isinstance(trusted, dict) and net.UNIX_PEER in trusted.get("TRUSTED_PROXIES", [])
    ):
        return []
    return [
        Warning(
            f"{net.requests_without_address} request(s) arrived with no REMOTE_ADDR: their "
            "client address is unknown.",
            hint="Behind a proxy on a unix socket (nginx → gunicorn), add 'unix' to "
            "APIAUTH['TRUSTED_PROXIES'] so the proxy's forwarding header is read; otherwise IP "
            "allowlists never match and all such clients share one rate-limit bucket.",
            id="apiauth.W009",
        )
    ]


def _throttle_in_use() -> bool:
    """Whether DRF's default throttles include ours (or a subclass of it)."""
    from apiauth.throttling import TokenBucketThrottle

    return any(
        issubclass(cls, TokenBucketThrottle) for cls in _default_classes("DEFAULT_THROTTLE_CLASSES")
    )


def _default_classes(setting: str) -> list[type]:
    """The classes DRF's ``setting`` names, imported (paths that do not import are left to
    DRF's own error)."""
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    found = []
    for path in rest.get(setting, []):
        try:
            cls = import_string(path) if isinstance(path, str) else path
        except ImportError:
            continue
        if isinstance(cls, type):
            found.append(cls)
    return found


@register(Tags.security)
def check_schemes_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A scheme configured but not enabled, or enabled but not configured: the settings that
    the README's sections assign one after another are easy to leave half done."""
    from apiauth.authentication import HMACAuthentication, JWTAuthentication

    user = getattr(settings, "APIAUTH", None)
    if not isinstance(user, dict):
        return []
    classes = _default_classes("DEFAULT_AUTHENTICATION_CLASSES")
    jwt_enabled = any(issubclass(cls, JWTAuthentication) for cls in classes)
    hmac_enabled = any(issubclass(cls, HMACAuthentication) for cls in classes)
    jwt = user.get("JWT") or {}
    issuers = jwt.get("ISSUERS") if isinstance(jwt, dict) else None
    messages: list[CheckMessage] = []
    if issuers and not jwt_enabled:
        messages.append(
            Warning(
                "APIAUTH['JWT']['ISSUERS'] is set but JWTAuthentication is not in "
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']: tokens are issued or trusted "
                "that no view accepts.",
                hint="Add 'apiauth.authentication.JWTAuthentication' to the list (keep the "
                "classes already there). Silence this check if only some views set it.",
                id="apiauth.W011",
            )
        )
    if jwt_enabled and not issuers:
        messages.append(
            Warning(
                "JWTAuthentication is enabled but APIAUTH['JWT']['ISSUERS'] is empty: every "
                "bearer JWT is refused.",
                hint="Trust an issuer: {'ISSUER': ..., 'AUDIENCES': [...], 'KEYS': 'local'} for "
                "our own tokens (README, JSON Web Tokens).",
                id="apiauth.W012",
            )
        )
    if user.get("HMAC") and not hmac_enabled:
        messages.append(
            Warning(
                "APIAUTH['HMAC'] is set but HMACAuthentication is not in "
                "REST_FRAMEWORK['DEFAULT_AUTHENTICATION_CLASSES']: signed requests are refused.",
                hint="Add 'apiauth.authentication.HMACAuthentication' to the list (keep the "
                "classes already there). Silence this check if only some views set it.",
                id="apiauth.W013",
            )
        )
    return messages


@register(Tags.security)
def check_drf_integration(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    messages: list[CheckMessage] = []
    if rest.get("EXCEPTION_HANDLER") != "apiauth.errors.exception_handler":
        messages.append(
            Warning(
                "DRF's exception handler is not apiauth's.",
                hint="Set REST_FRAMEWORK['EXCEPTION_HANDLER'] = 'apiauth.errors.exception_handler' "
                "so errors are RFC 9457 problem+json and 403s carry their scope challenge.",
                id="apiauth.W003",
            )
        )
    if "apiauth.middleware.SecurityHeadersMiddleware" not in settings.MIDDLEWARE:
        messages.append(
            Warning(
                "apiauth.middleware.SecurityHeadersMiddleware is not installed.",
                hint="Add it near the top of MIDDLEWARE: responses to credentialed requests "
                "then carry Cache-Control: no-store, and every response an X-Request-Id.",
                id="apiauth.W004",
            )
        )
    if _throttle_in_use() and (
        "apiauth.middleware.RateLimitHeadersMiddleware" not in settings.MIDDLEWARE
    ):
        messages.append(
            Warning(
                "apiauth.middleware.RateLimitHeadersMiddleware is not installed.",
                hint="Without it responses carry no RateLimit or X-RateLimit-* headers.",
                id="apiauth.W006",
            )
        )
    return messages
