"""System checks for apiauth's configuration, registered under ``Tags.security``, one module
per concern: ``settings`` (the dict, keys, headers, proxies, scopes, cache, encryption keys),
``limits`` (plans, costs, the store), ``jwt``, ``hmac``, ``views`` and ``integration`` (DRF's
classes, the middleware, half-configured schemes).

Ids are stable and never reused; each names one problem and has one test.
"""

from apiauth.checks.hmac import check_hmac
from apiauth.checks.integration import (
    check_drf_integration,
    check_requests_seen,
    check_schemes_configured,
)
from apiauth.checks.jwt import check_jwt
from apiauth.checks.limits import check_limits
from apiauth.checks.settings import check_settings
from apiauth.checks.views import check_views

__all__ = [
    "check_drf_integration",
    "check_hmac",
    "check_jwt",
    "check_limits",
    "check_requests_seen",
    "check_schemes_configured",
    "check_settings",
    "check_views",
]
