"""Checks of the views the URLconf reaches: their costs and the scopes they require."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.urls import URLPattern, URLResolver, get_resolver

from apiauth.checks.common import limits_of, user_settings, whole
from apiauth.checks.limits import common_limits
from apiauth.scopes import unregistered
from apiauth.throttling.rates import MAX_COST


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
    user = user_settings()
    if user is None:
        return []
    plans = user.get("PLANS", {}) if isinstance(user.get("PLANS", {}), dict) else {}
    capacities = [limit.capacity for _name, limit in common_limits(user, plans)]
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
        own = [limit.capacity for limit in limits_of(scope_rates.get(scope), str(scope))]
        smallest = min([*capacities, *own], default=MAX_COST)
        costs = declared.values() if isinstance(declared, Mapping) else [declared]
        for cost in costs:
            if not whole(cost, 1, smallest):
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
