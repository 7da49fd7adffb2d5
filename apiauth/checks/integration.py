"""Checks of how apiauth is wired into the project: DRF's classes, the middleware, what the
process has seen of its requests, and schemes configured but not enabled (or the reverse)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register

from apiauth import net
from apiauth.checks.common import default_classes, throttle_in_use, user_settings


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


@register(Tags.security)
def check_schemes_configured(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A scheme configured but not enabled, or enabled but not configured: the settings that
    the README's sections assign one after another are easy to leave half done."""
    from apiauth.authentication import HMACAuthentication, JWTAuthentication

    user = user_settings()
    if user is None:
        return []
    classes = default_classes("DEFAULT_AUTHENTICATION_CLASSES")
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
    if throttle_in_use() and (
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


@register(Tags.compatibility)
def check_schema_class(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """drf-spectacular's own AutoSchema describes our schemes (the extensions register with
    it) but not what apiauth answers: 401 with its challenges, 403, 429, the limit headers."""
    rest_framework = getattr(settings, "REST_FRAMEWORK", {}) or {}
    configured = (
        rest_framework.get("DEFAULT_SCHEMA_CLASS") if isinstance(rest_framework, dict) else None
    )
    if configured != "drf_spectacular.openapi.AutoSchema":
        return []
    return [
        Warning(
            "REST_FRAMEWORK['DEFAULT_SCHEMA_CLASS'] is drf-spectacular's AutoSchema: the schema "
            "leaves out apiauth's 401, 403 and 429 answers and the rate-limit headers.",
            hint="Set it to 'apiauth.openapi.AutoSchema' (drf-spectacular's, plus those).",
            id="apiauth.W014",
        )
    ]
