"""One test per system check id."""

from __future__ import annotations

from typing import Any

from django.core.checks import Tags, run_checks
from django.test import override_settings


def ids(**settings: Any) -> set[str]:
    with override_settings(**settings):
        # Only security checks: model checks may open a database connection (Django 6.1).
        messages = run_checks(tags=[Tags.security], include_deployment_checks=False)
        return {str(message.id) for message in messages}


def test_clean_configuration_has_no_apiauth_messages() -> None:
    assert not {i for i in ids() if i.startswith("apiauth.")}


def test_e001_apiauth_must_be_a_dict() -> None:
    assert "apiauth.E001" in ids(APIAUTH=["KEY_PREFIX"])


def test_e002_unknown_setting() -> None:
    assert "apiauth.E002" in ids(APIAUTH={"KEY_PREFIXX": "abc"})


def test_e003_bad_prefix() -> None:
    assert "apiauth.E003" in ids(APIAUTH={"KEY_PREFIX": "my_prefix"})
    assert "apiauth.E003" in ids(APIAUTH={"KEY_PREFIX": "A"})


def test_e004_bad_trusted_proxies() -> None:
    assert "apiauth.E004" in ids(APIAUTH={"TRUSTED_PROXIES": "10.0.0.0/8"})
    assert "apiauth.E004" in ids(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/33"]})


def test_w001_query_param_keys() -> None:
    assert "apiauth.W001" in ids(APIAUTH={"KEY_QUERY_PARAM": "api_key"})


def test_w002_broad_trusted_proxies() -> None:
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["0.0.0.0/0"]})
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["::/0"]})
    assert "apiauth.W002" not in ids(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/8", "fd00:1::/48"]})


def test_w003_exception_handler() -> None:
    assert "apiauth.W003" in ids(REST_FRAMEWORK={})


def test_w004_middleware(settings: Any) -> None:
    middleware = [m for m in settings.MIDDLEWARE if not m.startswith("apiauth.")]
    assert "apiauth.W004" in ids(MIDDLEWARE=middleware)


def test_e005_invalid_plans() -> None:
    assert "apiauth.E005" in ids(APIAUTH={"PLANS": ["free"]})
    assert "apiauth.E005" in ids(APIAUTH={"PLANS": {"free": {"rate": "lots"}}})


def test_e006_default_plan_unknown() -> None:
    assert "apiauth.E006" in ids(APIAUTH={"PLANS": {}, "DEFAULT_PLAN": "gold"})


def test_e007_invalid_other_limits() -> None:
    assert "apiauth.E007" in ids(APIAUTH={"ANONYMOUS_LIMITS": "often"})
    assert "apiauth.E007" in ids(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "1/s", "burst": -1}})
    assert "apiauth.E007" in ids(APIAUTH={"SCOPE_RATES": {"uploads": "x"}})
    assert "apiauth.E007" in ids(APIAUTH={"SCOPE_RATES": "10/min"})
    assert "apiauth.E007" not in ids(APIAUTH={"ANONYMOUS_LIMITS": None})


def test_e008_backend_settings() -> None:
    assert "apiauth.E008" in ids(APIAUTH={"RATELIMIT_BACKEND": "memcached"})
    assert "apiauth.E008" in ids(APIAUTH={"RATELIMIT_FAILURE_MODE": "maybe"})
    assert "apiauth.E008" in ids(APIAUTH={"RATELIMIT_CACHE": "missing"})


def test_w005_per_process_buckets() -> None:
    local = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "apiauth.W005" in ids(CACHES=local)
    assert "apiauth.W005" in ids(APIAUTH={"RATELIMIT_BACKEND": "local"})
    assert "apiauth.W005" not in ids()


def test_w006_rate_limit_headers_middleware(settings: Any) -> None:
    middleware = [m for m in settings.MIDDLEWARE if "RateLimit" not in m]
    assert "apiauth.W006" in ids(MIDDLEWARE=middleware)
