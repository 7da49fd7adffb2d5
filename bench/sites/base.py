"""What the anchor and floor sites share with each other and with the demo's production run."""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

SECRET_KEY = "bench-e2e-" + "e" * 50
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WSGI_APPLICATION = "bench.sites.wsgi.application"

# Django's standard middleware, as in the demo (which adds its own headers, CORS and WhiteNoise).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
BASE_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
]
# BENCH_MIDDLEWARE=demo: the demo's whole list instead, configured as the demo configures it
# (request ids and security headers, rate-limit headers, CORS, WhiteNoise), so a contender
# can be compared like for like (project/settings.py is the reference).
SAME_AS_DEMO = os.environ.get("BENCH_MIDDLEWARE") == "demo"
if SAME_AS_DEMO:
    MIDDLEWARE = [
        "apiauth.middleware.SecurityHeadersMiddleware",
        "apiauth.middleware.RateLimitHeadersMiddleware",
        "corsheaders.middleware.CorsMiddleware",
        MIDDLEWARE[0],
        "whitenoise.middleware.WhiteNoiseMiddleware",
        *MIDDLEWARE[1:],
    ]
    BASE_APPS += ["django.contrib.staticfiles", "corsheaders"]
    STATIC_URL = "static/"
    STATIC_ROOT = os.environ.get("STATIC_ROOT")
    CORS_ALLOWED_ORIGINS: list[str] = []
    CORS_URLS_REGEX = r"^/(v1/|health$).*"
    CORS_ALLOW_HEADERS = ["authorization", "content-type", "x-api-key", "x-request-id"]
    CORS_EXPOSE_HEADERS = [
        "x-request-id",
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ]
TEMPLATES: list[dict[str, Any]] = []
DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=600, conn_health_checks=True
    )
}
REDIS_URL = os.environ["REDIS_URL"]
CACHES: dict[str, Any] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25},
    }
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
