"""Settings for the apiauth demo project, configured from the environment.

``DATABASE_URL`` (``sqlite:///path`` or ``postgres://user:pass@host:port/name``), ``REDIS_URL``,
``DJANGO_DEBUG``, ``SECRET_KEY``, ``APIAUTH_ENCRYPTION_KEYS``, ``PUBLIC_URL``, ``ALLOWED_HOSTS`` and
``CORS_ALLOWED_ORIGINS`` (the last three comma separated).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_from_url(url: str) -> dict[str, Any]:
    """``DATABASE_URL`` → ``DATABASES["default"]``, with persistent, health-checked connections
    for every engine: opening a connection per request cost more than the request's query."""
    config: dict[str, Any] = dict(
        dj_database_url.parse(url, conn_max_age=600, conn_health_checks=True)
    )
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Writers take the lock when their transaction begins and wait up to 20 s for it,
        # instead of failing with "database is locked" when two operators save at once.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
    return config


DEBUG = env_bool("DJANGO_DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY") or (
    "django-insecure-demo-only-" + "0" * 32 if DEBUG else ""
)
if not SECRET_KEY:
    raise RuntimeError("Set SECRET_KEY (or DJANGO_DEBUG=1 for a local demo).")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
# HMAC secrets are encrypted with these (the first encrypts); a fixed one only for a local demo.
ENCRYPTION_KEYS = env_list("APIAUTH_ENCRYPTION_KEYS") or (
    ["ZGVtby1vbmx5LWVuY3J5cHRpb24ta2V5LW5vdC1zZWM="] if DEBUG else []
)
if not ENCRYPTION_KEYS:
    raise RuntimeError("Set APIAUTH_ENCRYPTION_KEYS (or DJANGO_DEBUG=1 for a local demo).")

# The demo's own URL, its tokens' issuer and its OAuth metadata's: a production deployment
# names it (a wrong issuer breaks every client's discovery and every verifier's check).
PUBLIC_URL = os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000" if DEBUG else "").rstrip("/")
if not PUBLIC_URL:
    raise RuntimeError("Set PUBLIC_URL, e.g. https://api.example.com (or DJANGO_DEBUG=1).")
# An external identity provider to trust as well, e.g. Auth0 or Keycloak:
# JWT_ISSUER=https://tenant.eu.auth0.com/ JWT_AUDIENCE=https://api.example.com
# JWT_JWKS_URL=https://tenant.eu.auth0.com/.well-known/jwks.json
EXTERNAL_ISSUERS: list[dict[str, Any]] = (
    [
        {
            "ISSUER": os.environ["JWT_ISSUER"],
            "AUDIENCES": env_list("JWT_AUDIENCE"),
            "JWKS_URL": os.environ["JWT_JWKS_URL"],
        }
    ]
    if os.environ.get("JWT_ISSUER")
    else []
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apiauth",
    "project.demo",
]

MIDDLEWARE = [
    "apiauth.middleware.SecurityHeadersMiddleware",
    "apiauth.middleware.RateLimitHeadersMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
LOGIN_URL = "/accounts/login/"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

DATABASES = {
    "default": database_from_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
    )
}

REDIS_URL = os.environ.get("REDIS_URL", "")
CACHES: dict[str, Any] = {
    "default": (
        {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.25, "SOCKET_TIMEOUT": 0.25},
        }
        if REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT: Path | None = Path(os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles")
# WhiteNoise serves the admin's CSS and JS under gunicorn: compressed, with content hashes in
# the names so they can be cached for a year. Production runs `collectstatic` first; with
# DEBUG (make run), runserver serves them itself.
if not DEBUG:
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
        "whitenoise.middleware.WhiteNoiseMiddleware",
    )
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request bodies over 1 MiB are refused with 413 (apiauth.parsers.JSONParser).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apiauth.authentication.APIKeyAuthentication",
        "apiauth.authentication.HMACAuthentication",
        "apiauth.authentication.JWTAuthentication",
    ],
    # HasScopes first: it runs the throttle before deciding, so refused requests are limited
    # (and carry rate-limit headers) too.
    "DEFAULT_PERMISSION_CLASSES": [
        "apiauth.permissions.HasScopes",
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["apiauth.throttling.TokenBucketThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["apiauth.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "apiauth.negotiation.CachedContentNegotiation",
    "EXCEPTION_HANDLER": "apiauth.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # drf-spectacular's schema plus what apiauth answers (401, 403, 429, rate-limit headers).
    "DEFAULT_SCHEMA_CLASS": "apiauth.openapi.AutoSchema",
}

# The demo's schema at /api/schema and its browsable UI at /api/docs, served offline (the
# Swagger UI files come with drf-spectacular-sidecar, not from a CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "apiauth demo API",
    "DESCRIPTION": "Orders, and the OAuth 2.0 token endpoint, behind API keys, JWTs and SigV4.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

APIAUTH: dict[str, Any] = {
    "KEY_PREFIX": "apk",
    "TRUSTED_PROXIES": env_list("TRUSTED_PROXIES"),
    "PLANS": {
        "free": {"rate": "60/min", "burst": 10, "quotas": ["1000/day"]},
        "pro": {"rate": "600/min", "burst": 100, "quotas": ["50000/day"]},
        "enterprise": {"rate": "6000/min", "burst": 1000, "quotas": ["500000/day"]},
    },
    "DEFAULT_PLAN": "free",
    "ANONYMOUS_LIMITS": {"rate": "30/min", "burst": 10},
    "FAILED_AUTH_LIMITS": {"rate": "10/min", "burst": 20},
    "SCOPE_RATES": {"orders": {"rate": "120/min", "burst": 20}},
    # A write costs five reads.
    "UNSAFE_METHOD_COST": 5,
    "ENCRYPTION_KEYS": ENCRYPTION_KEYS,
    # SigV4 with its defaults: service "apiauth", region "global".
    "HMAC": {},
    # We issue access tokens (POST /auth/token) signed with our own keys, and refresh tokens.
    "JWT": {
        "ISSUERS": [
            {
                "ISSUER": PUBLIC_URL,
                "AUDIENCES": [f"{PUBLIC_URL}/v1"],
                "KEYS": "local",
            },
            *EXTERNAL_ISSUERS,
        ],
        "REFRESH_TOKENS": True,
    },
}

# Django's own refusals answer problem+json too.
CSRF_FAILURE_VIEW = "apiauth.errors.csrf_failure"

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
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

# Everything at WARNING and above reaches stderr, server errors (django.request, with their
# traceback) included; 4xx responses are not logged one by one, the audit log says why.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "apiauth.audit": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
