"""Checks of the rate limits: plans, the other limits, costs, the store and its failure mode."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from apiauth.checks.common import limits_of, throttle_in_use, user_settings, whole
from apiauth.conf import DEFAULTS
from apiauth.store import uses_redis
from apiauth.throttling.rates import MAX_COST, InvalidLimit, Limit, parse_limits

MAX_BREAKER_SECONDS = 300


@register(Tags.security)
def check_limits(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = user_settings()
    return [] if user is None else limits(user)


def limits(user: dict[str, Any]) -> list[CheckMessage]:
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
        "PERSON_LIMITS": user.get("PERSON_LIMITS", DEFAULTS["PERSON_LIMITS"]),
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
        if spec is None and setting in ("ANONYMOUS_LIMITS", "FAILED_AUTH_LIMITS", "PERSON_LIMITS"):
            continue
        try:
            parse_limits(spec)
        except InvalidLimit as exc:
            messages.append(
                Error(
                    f"APIAUTH['{setting}'] is invalid: {exc}",
                    hint="Use a rate string such as '60/min' or a dict with rate, burst, quotas; "
                    "None disables the anonymous, failed-authentication or person limits.",
                    id="apiauth.E007",
                )
            )
    messages += costs(user, plans, scope_rates if isinstance(scope_rates, dict) else {})
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
    if throttle_in_use() and not default:
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
    messages += store(user, url, mode)
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
                id="apiauth.E028",
            )
        )
    elif throttle_in_use() and (
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


def store(user: dict[str, Any], url: Any, mode: Any) -> list[CheckMessage]:
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
    if mode == "open" and throttle_in_use():
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


def common_limits(user: dict[str, Any], plans: Mapping[str, Any]) -> list[tuple[str, Limit]]:
    """Every plan's limits and the anonymous ones (each named for messages): what any request
    may meet, whatever its view."""
    anonymous = user.get("ANONYMOUS_LIMITS", DEFAULTS["ANONYMOUS_LIMITS"])
    return [
        *((f"PLANS[{name!r}]", limit) for name, spec in plans.items() for limit in limits_of(spec)),
        *(("ANONYMOUS_LIMITS", limit) for limit in limits_of(anonymous)),
    ]


def costs(
    user: dict[str, Any], plans: Mapping[str, Any], scope_rates: Mapping[str, Any]
) -> list[CheckMessage]:
    """Costs are whole numbers that every limit a request meets can hold."""
    cost = user.get("UNSAFE_METHOD_COST", DEFAULTS["UNSAFE_METHOD_COST"])
    if not whole(cost, 1, MAX_COST):
        return [
            Error(
                f"APIAUTH['UNSAFE_METHOD_COST'] must be a whole number from 1 to {MAX_COST}.",
                hint="It is how many units a POST, PUT, PATCH or DELETE takes; below 1 a "
                "request would give units back.",
                id="apiauth.E009",
            )
        ]
    where = common_limits(user, plans)
    where += [
        (f"SCOPE_RATES[{scope!r}]", limit)
        for scope, spec in scope_rates.items()
        for limit in limits_of(spec, scope)
    ]
    return [
        Error(
            f"APIAUTH['UNSAFE_METHOD_COST'] ({cost}) is more than APIAUTH['{name}'] ever holds "
            f"({limit.name}: {limit.capacity}): unsafe requests would never be admitted.",
            hint="Raise that limit's burst or quota, or lower the cost.",
            id="apiauth.E029",
        )
        for name, limit in where
        if limit.capacity < cost
    ]
