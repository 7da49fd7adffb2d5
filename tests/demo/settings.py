"""The demo project's settings, made deterministic for its own tests (tests/demo/)."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-" + "k" * 50)
os.environ.setdefault("APIAUTH_ENCRYPTION_KEYS", "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ=")
os.environ.setdefault("PUBLIC_URL", "http://127.0.0.1:8000")
os.environ.pop("REDIS_URL", None)  # the redis_server fixture points the caches at its own server

from project.settings import *  # noqa: E402,F403

DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
# Pages render without a collectstatic manifest; test_gunicorn.py covers the real storage.
STATIC_ROOT = None
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
