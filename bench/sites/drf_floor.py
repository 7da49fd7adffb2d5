"""The DRF floor: the least any DRF API-key stack must do. An ``APIView`` whose
``BaseAuthentication`` makes one indexed lookup of the key's SHA-256 digest and whose
``BaseThrottle`` runs one EVALSHA token bucket (``bench/sites/drf_floor_urls.py``)."""

from __future__ import annotations

from typing import Any

from bench.sites.base import *  # noqa: F403
from bench.sites.base import BASE_APPS

# apiauth only for its table; the authentication reads it with one raw query.
INSTALLED_APPS = [*BASE_APPS, "rest_framework", "apiauth"]
ROOT_URLCONF = "bench.sites.drf_floor_urls"
REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
