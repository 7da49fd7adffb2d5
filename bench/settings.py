"""Settings for the benchmarks: every contender installed side by side, one SQLite file."""

from __future__ import annotations

import os
import tempfile
from typing import Any

SECRET_KEY = "bench-only-" + "b" * 50
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "rest_framework_api_key",
    "apiauth",
]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.urls"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # A file, not :memory:, so every contender pays for real (page-cached) reads.
        "NAME": os.path.join(
            os.environ.get("BENCH_DIR") or tempfile.mkdtemp(prefix="apiauth-bench-"), "bench.db"
        ),
    }
}
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHES: dict[str, Any] = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "apiauth.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
# Authentication is measured alone: the failed-authentication lockout would answer the
# rejection rows with 429s after twenty attempts.
APIAUTH: dict[str, Any] = {
    "FAILED_AUTH_LIMITS": None,
    "ENCRYPTION_KEYS": ["YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="],
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
