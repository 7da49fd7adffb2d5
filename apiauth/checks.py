"""System checks for apiauth's configuration, registered under ``Tags.security``.

Ids are stable and never reused; each has one test.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from apiauth.conf import DEFAULTS
from apiauth.crypto import PREFIX_RE
from apiauth.throttling.backends import uses_redis
from apiauth.throttling.rates import InvalidLimit, parse_limits

BROAD_PREFIX = {4: 8, 6: 32}


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
    messages += _check_limits(user)
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
        try:
            network = ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            messages.append(
                Error(
                    f"APIAUTH['TRUSTED_PROXIES'] entry {entry!r} is not an IP network.",
                    hint="Use CIDR notation such as '10.0.0.0/8' or '2001:db8::/32'.",
                    id="apiauth.E004",
                )
            )
            continue
        if network.prefixlen < BROAD_PREFIX[network.version]:
            messages.append(
                Warning(
                    f"APIAUTH['TRUSTED_PROXIES'] trusts {network}, which is very broad.",
                    hint="Any host in a trusted network can set X-Forwarded-For and choose its "
                    "own client address, bypassing IP allowlists and per-IP limits. List only "
                    "your proxies' addresses.",
                    id="apiauth.W002",
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
    backend = user.get("RATELIMIT_BACKEND", DEFAULTS["RATELIMIT_BACKEND"])
    mode = user.get("RATELIMIT_FAILURE_MODE", DEFAULTS["RATELIMIT_FAILURE_MODE"])
    alias = user.get("RATELIMIT_CACHE", DEFAULTS["RATELIMIT_CACHE"])
    if backend not in {"auto", "redis", "local"} or mode not in {"open", "closed"}:
        messages.append(
            Error(
                "APIAUTH['RATELIMIT_BACKEND'] must be 'auto', 'redis' or 'local', and "
                "APIAUTH['RATELIMIT_FAILURE_MODE'] 'open' or 'closed'.",
                hint="'auto' uses Redis when the cache alias is a django-redis cache.",
                id="apiauth.E008",
            )
        )
    elif alias not in settings.CACHES:
        messages.append(
            Error(
                f"APIAUTH['RATELIMIT_CACHE'] {alias!r} is not in CACHES.",
                hint="Name the django-redis cache alias whose Redis holds the buckets.",
                id="apiauth.E008",
            )
        )
    elif _throttle_in_use() and (
        backend == "local" or (backend == "auto" and not uses_redis(alias))
    ):
        messages.append(
            Warning(
                "Rate limits are kept in each process's memory.",
                hint=f"CACHES[{alias!r}] is not a django-redis cache, so every worker keeps "
                "its own buckets and N workers admit up to N times each limit. Set REDIS_URL "
                "or point APIAUTH['RATELIMIT_CACHE'] at a django-redis cache.",
                id="apiauth.W005",
            )
        )
    return messages


def _throttle_in_use() -> bool:
    rest = getattr(settings, "REST_FRAMEWORK", {}) or {}
    return "apiauth.throttling.TokenBucketThrottle" in rest.get("DEFAULT_THROTTLE_CLASSES", [])


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
