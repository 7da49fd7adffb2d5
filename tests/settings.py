"""The library's own test settings: only what apiauth needs, nothing of the demo project."""

from __future__ import annotations

from typing import Any

from tests.databases import databases

SECRET_KEY = "tests-only-" + "k" * 50
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.urls"
LOGIN_URL = "/accounts/login/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STATIC_URL = "static/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "apiauth",
]

MIDDLEWARE = [
    "apiauth.middleware.SecurityHeadersMiddleware",
    "apiauth.middleware.RateLimitHeadersMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# SQLite in memory, or PostgreSQL when DATABASE_URL says; "other" only for the tests that ask
# for it: changes saved to another database are announced when that database's transaction
# commits (tests/test_cache.py).
DATABASES = databases()
# The redis_server fixture points this at its own redis-server.
CACHES: dict[str, Any] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apiauth.authentication.APIKeyAuthentication",
        "apiauth.authentication.HMACAuthentication",
        "apiauth.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "apiauth.permissions.HasScopes",
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["apiauth.throttling.TokenBucketThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apiauth.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "apiauth.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}

# Refills are slow (a token every 6 minutes), so "ten requests, then a 429" holds however slow
# the machine running the tests; no test depends on its own pace.
APIAUTH: dict[str, Any] = {
    "PLANS": {
        "free": {"rate": "10/hour", "burst": 10, "quotas": ["1000/day"]},
        "pro": {"rate": "100/hour", "burst": 100, "quotas": ["50000/day"]},
    },
    "DEFAULT_PLAN": "free",
    "ANONYMOUS_LIMITS": {"rate": "10/hour", "burst": 10},
    "FAILED_AUTH_LIMITS": {"rate": "10/min", "burst": 20},
    "SCOPE_RATES": {"orders": {"rate": "20/hour", "burst": 20}},
    "UNSAFE_METHOD_COST": 5,
    # Tests only: real deployments read theirs from the environment.
    "ENCRYPTION_KEYS": ["dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="],
    "JWT": {
        "ISSUERS": [
            {
                "ISSUER": "https://testserver",
                "AUDIENCES": ["https://testserver/v1"],
                "KEYS": "local",
            }
        ],
        "REFRESH_TOKENS": True,
    },
}

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

LOGGING = {"version": 1, "disable_existing_loggers": False}
