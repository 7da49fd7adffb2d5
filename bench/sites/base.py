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
# can be compared like for like. Read from the demo's settings, so the two cannot drift.
SAME_AS_DEMO = os.environ.get("BENCH_MIDDLEWARE") == "demo"
if SAME_AS_DEMO:
    from project import settings as _demo

    MIDDLEWARE = list(_demo.MIDDLEWARE)
    BASE_APPS += ["django.contrib.staticfiles", "corsheaders"]
    STATIC_URL = _demo.STATIC_URL
    STATIC_ROOT = _demo.STATIC_ROOT
    CORS_ALLOWED_ORIGINS = _demo.CORS_ALLOWED_ORIGINS
    CORS_URLS_REGEX = _demo.CORS_URLS_REGEX
    CORS_ALLOW_HEADERS = _demo.CORS_ALLOW_HEADERS
    CORS_EXPOSE_HEADERS = _demo.CORS_EXPOSE_HEADERS
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
