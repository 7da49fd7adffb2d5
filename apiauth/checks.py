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
    return messages
