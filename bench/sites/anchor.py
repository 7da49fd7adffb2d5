"""The anchor: what a team glues together today. DRF, djangorestframework-api-key's
``HasAPIKey`` and DRF's ``ScopedRateThrottle`` keyed by the API key, on a django-redis cache."""

from __future__ import annotations

from bench.sites.base import *  # noqa: F403
from bench.sites.base import BASE_APPS, SAME_AS_DEMO

INSTALLED_APPS = [*BASE_APPS, "rest_framework", "rest_framework_api_key"]
if SAME_AS_DEMO:
    INSTALLED_APPS.append("apiauth")  # for the demo's own middleware
ROOT_URLCONF = "bench.sites.anchor_urls"
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_RATES": {"ping": "6000/min"},
}
