"""One test per system check id."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Tags, run_checks
from django.test import override_settings

from apiauth.throttling import TokenBucketThrottle


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
    assert "apiauth.E004" in ids(APIAUTH={"TRUSTED_PROXIES": ["socket"]})
    assert "apiauth.E004" not in ids(APIAUTH={"TRUSTED_PROXIES": ["unix", "10.0.0.5/32"]})
    # Host bits are allowed, as at runtime (net.py reads the network around them).
    assert "apiauth.E004" not in ids(APIAUTH={"TRUSTED_PROXIES": ["10.1.2.5/24"]})


def test_every_bad_proxy_entry_is_named() -> None:
    """Each entry is judged on its own: a bad one does not hide the ones after it."""
    proxies = ["unix", "socket", "0.0.0.0/0", "10.0.0.0/33", "::/0"]
    with override_settings(APIAUTH={"TRUSTED_PROXIES": proxies}):
        found = [m for m in run_checks() if m.id in ("apiauth.E004", "apiauth.W002")]
    assert [(m.id, m.msg) for m in found] == [
        ("apiauth.E004", "APIAUTH['TRUSTED_PROXIES'] entry 'socket' is not an IP network."),
        ("apiauth.W002", "APIAUTH['TRUSTED_PROXIES'] trusts 0.0.0.0/0, which is very broad."),
        ("apiauth.E004", "APIAUTH['TRUSTED_PROXIES'] entry '10.0.0.0/33' is not an IP network."),
        ("apiauth.W002", "APIAUTH['TRUSTED_PROXIES'] trusts ::/0, which is very broad."),
    ]
    assert all(m.hint for m in found)
    with override_settings(APIAUTH={"TRUSTED_PROXIES": "10.0.0.0/8"}):
        [error] = [m for m in run_checks() if m.id == "apiauth.E004"]
    assert error.msg == "APIAUTH['TRUSTED_PROXIES'] must be a list of CIDR strings."
    assert error.hint == "For example ['10.0.0.0/8'] for a load balancer in your private network."


def test_w001_query_param_keys() -> None:
    assert "apiauth.W001" in ids(APIAUTH={"KEY_QUERY_PARAM": "api_key"})


def test_w002_broad_trusted_proxies() -> None:
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["0.0.0.0/0"]})
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["::/0"]})
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["10.0.0.0/8"]})
    assert "apiauth.W002" in ids(APIAUTH={"TRUSTED_PROXIES": ["fd00:1::/48"]})
    assert "apiauth.W002" not in ids(
        APIAUTH={"TRUSTED_PROXIES": ["10.1.0.0/16", "fd00:1:2:3::/64", "unix"]}
    )


def test_w003_exception_handler() -> None:
    assert "apiauth.W003" in ids(REST_FRAMEWORK={})


def test_w004_middleware(settings: Any) -> None:
    middleware = [m for m in settings.MIDDLEWARE if not m.startswith("apiauth.")]
    assert "apiauth.W004" in ids(MIDDLEWARE=middleware)


def test_e005_invalid_plans() -> None:
    assert "apiauth.E005" in ids(APIAUTH={"PLANS": ["free"]})
    assert "apiauth.E005" in ids(APIAUTH={"PLANS": {"free": {"rate": "lots"}}})
    # The review's absurd values: refused before they can reach the Lua maths.
    for spec in (
        {"rate": "1/99999999999999999999s"},
        {"quotas": ["1/99999999999999day"]},
        {"rate": "1/100000000day"},
    ):
        assert "apiauth.E005" in ids(APIAUTH={"PLANS": {"free": spec}}), spec
        assert "apiauth.E007" in ids(APIAUTH={"ANONYMOUS_LIMITS": spec}), spec


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
    assert "apiauth.E008" not in ids(APIAUTH={"RATELIMIT_CACHE": "missing"})


def test_e028_cache_alias_unknown() -> None:
    assert "apiauth.E028" in ids(APIAUTH={"RATELIMIT_CACHE": "missing"})
    assert "apiauth.E028" not in ids(
        APIAUTH={"RATELIMIT_CACHE": "missing", "REDIS_URL": "redis://h:1"}
    )
    assert "apiauth.E028" not in ids(APIAUTH={})


def test_w005_per_process_buckets() -> None:
    local = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert "apiauth.W005" in ids(CACHES=local)
    assert "apiauth.W005" in ids(APIAUTH={"RATELIMIT_BACKEND": "local"})
    assert "apiauth.W005" not in ids()


def test_w006_rate_limit_headers_middleware(settings: Any) -> None:
    middleware = [m for m in settings.MIDDLEWARE if "RateLimit" not in m]
    assert "apiauth.W006" in ids(MIDDLEWARE=middleware)


def test_w007_no_default_plan(settings: Any) -> None:
    assert "apiauth.W007" in ids(APIAUTH={**settings.APIAUTH, "PLANS": {}, "DEFAULT_PLAN": None})
    assert "apiauth.W007" in ids(APIAUTH={})
    assert "apiauth.W007" not in ids(APIAUTH={}, REST_FRAMEWORK={})


def test_throttle_subclasses_are_recognised() -> None:
    rest = {"DEFAULT_THROTTLE_CLASSES": ["tests.test_checks.MyThrottle"]}
    assert "apiauth.W007" in ids(APIAUTH={}, REST_FRAMEWORK=rest)
    rest = {"DEFAULT_THROTTLE_CLASSES": ["no.such.Throttle"]}
    assert "apiauth.W007" not in ids(APIAUTH={}, REST_FRAMEWORK=rest)


def test_e009_unsafe_method_cost(settings: Any) -> None:
    for cost in (0, -1, 1.5, "5", True, 10**10):
        assert "apiauth.E009" in ids(APIAUTH={**settings.APIAUTH, "UNSAFE_METHOD_COST": cost})
    assert "apiauth.E009" not in ids(APIAUTH={**settings.APIAUTH, "UNSAFE_METHOD_COST": 11})


def test_e029_unsafe_method_cost_above_a_limit(settings: Any) -> None:
    # More than a plan's burst (free: 10), the anonymous limit or a scope rate holds.
    assert "apiauth.E029" in ids(APIAUTH={**settings.APIAUTH, "UNSAFE_METHOD_COST": 11})
    anon = {"rate": "30/min", "burst": 4}
    assert "apiauth.E029" in ids(APIAUTH={**settings.APIAUTH, "ANONYMOUS_LIMITS": anon})
    scoped = {"uploads": {"quotas": ["3/day"]}}
    assert "apiauth.E029" in ids(APIAUTH={**settings.APIAUTH, "SCOPE_RATES": scoped})
    assert "apiauth.E029" not in ids(APIAUTH={**settings.APIAUTH, "UNSAFE_METHOD_COST": 10})
    assert "apiauth.E029" not in ids(APIAUTH={**settings.APIAUTH, "UNSAFE_METHOD_COST": 0})


def test_e010_breaker_seconds() -> None:
    for value in (86400, -1, 0, "5", None):
        assert "apiauth.E010" in ids(APIAUTH={"RATELIMIT_BREAKER_SECONDS": value})
    assert "apiauth.E010" not in ids(APIAUTH={"RATELIMIT_BREAKER_SECONDS": 0.5})
    assert "apiauth.E010" not in ids(APIAUTH={"RATELIMIT_BREAKER_SECONDS": 300})


def test_e011_view_throttle_cost(settings: Any) -> None:
    from tests.testapp.views import OrderListView

    for cost in (0, -5, 11, {"POST": 0}, {"POST": "5"}):
        OrderListView.throttle_cost = cost  # type: ignore[attr-defined]
        try:
            assert "apiauth.E011" in ids(), cost
        finally:
            del OrderListView.throttle_cost  # type: ignore[attr-defined]
    OrderListView.throttle_cost = {"GET": 1, "POST": 10}  # type: ignore[attr-defined]
    try:
        assert "apiauth.E011" not in ids()
        # The view's own scope rate counts too (orders: burst 20 in the demo).
        scoped = {**settings.APIAUTH, "SCOPE_RATES": {"orders": {"rate": "60/min", "burst": 2}}}
        assert "apiauth.E011" in ids(APIAUTH=scoped)
    finally:
        del OrderListView.throttle_cost  # type: ignore[attr-defined]


def test_e012_key_header() -> None:
    for header in ("Cookie", "Authorization", "host", "X_API_Key", "X API Key", "", 5):
        assert "apiauth.E012" in ids(APIAUTH={"KEY_HEADER": header}), header
    assert "apiauth.E012" not in ids(APIAUTH={"KEY_HEADER": "X-Service-Token"})


def test_e013_max_credential_length() -> None:
    for length in (10, 65, 16385, "512", None):
        assert "apiauth.E013" in ids(APIAUTH={"MAX_CREDENTIAL_LENGTH": length}), length
    assert "apiauth.E013" not in ids(APIAUTH={"MAX_CREDENTIAL_LENGTH": 66})  # len of an apk key
    assert "apiauth.E013" in ids(APIAUTH={"KEY_PREFIX": "acme", "MAX_CREDENTIAL_LENGTH": 66})


def test_e014_client_ip_header() -> None:
    for header in ("Cookie", "X_Real_IP", ""):
        assert "apiauth.E014" in ids(APIAUTH={"CLIENT_IP_HEADER": header}), header
    for header in ("Forwarded", "X-Real-IP", "CF-Connecting-IP"):
        assert "apiauth.E014" not in ids(APIAUTH={"CLIENT_IP_HEADER": header})


def test_e015_lockout_mode() -> None:
    assert "apiauth.E015" in ids(APIAUTH={"FAILED_AUTH_LOCKOUT": "strict"})
    assert "apiauth.E015" not in ids(APIAUTH={"FAILED_AUTH_LOCKOUT": "all"})
    assert "apiauth.E033" in ids(APIAUTH={"LIMIT_ADMIN_LOGIN": 1})
    assert "apiauth.E033" not in ids(APIAUTH={"LIMIT_ADMIN_LOGIN": False})


def test_e022_ratelimit_key_prefix() -> None:
    for prefix in ("rl{x}:", "app}", "a\nb", 5):
        assert "apiauth.E022" in ids(APIAUTH={"RATELIMIT_KEY_PREFIX": prefix}), prefix
    for prefix in ("rl:", "", "my-app:rl:", "*?[]"):
        assert "apiauth.E022" not in ids(APIAUTH={"RATELIMIT_KEY_PREFIX": prefix}), prefix


def test_w009_requests_without_an_address(settings: Any) -> None:
    from apiauth import net

    before = net.requests_without_address
    assert "apiauth.W009" not in ids()
    net.requests_without_address = 3
    try:
        assert "apiauth.W009" in ids()
        trusting = {**settings.APIAUTH, "TRUSTED_PROXIES": ["unix"]}
        assert "apiauth.W009" not in ids(APIAUTH=trusting)
    finally:
        net.requests_without_address = before


class MyThrottle(TokenBucketThrottle):
    pass


def test_e017_credential_cache() -> None:
    for bad in (
        {"CREDENTIAL_CACHE_TTL": -1},
        {"CREDENTIAL_CACHE_TTL": 86_401},
        {"CREDENTIAL_CACHE_TTL": "60"},
        {"CREDENTIAL_CACHE_TTL": True},
        {"CREDENTIAL_CACHE_SIZE": 0},
        {"CREDENTIAL_CACHE_SIZE": 10_000_001},
        {"CREDENTIAL_CACHE_SIZE": 1.5},
    ):
        assert "apiauth.E017" in ids(APIAUTH=bad), bad
    for good in (
        {"CREDENTIAL_CACHE_TTL": 0},
        {"CREDENTIAL_CACHE_TTL": 86_400},
        {"CREDENTIAL_CACHE_TTL": 0.5},
        {"CREDENTIAL_CACHE_SIZE": 1},
        {"CREDENTIAL_CACHE_SIZE": 10_000_000},
    ):
        assert "apiauth.E017" not in ids(APIAUTH=good), good


KEY = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="
HMAC_ON = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["apiauth.authentication.HMACAuthentication"],
}


def test_e018_encryption_keys_malformed() -> None:
    for bad in ("not a list", ["too-short"], ["%%%%"], [42]):
        assert "apiauth.E018" in ids(APIAUTH={"ENCRYPTION_KEYS": bad}), bad
    assert "apiauth.E018" not in ids(APIAUTH={"ENCRYPTION_KEYS": [KEY, "A" * 43 + "="]})
    assert "apiauth.E018" not in ids(APIAUTH={"ENCRYPTION_KEYS": [KEY, KEY]})


def test_e025_encryption_keys_missing() -> None:
    # Missing: an error only when HMAC authentication is on (or a subclass of it)...
    assert "apiauth.E025" in ids(APIAUTH={}, REST_FRAMEWORK={**settings.REST_FRAMEWORK, **HMAC_ON})
    subclass = {"DEFAULT_AUTHENTICATION_CLASSES": ["tests.testapp.auth.ProjectHMAC"]}
    assert "apiauth.E025" in ids(APIAUTH={}, REST_FRAMEWORK={**settings.REST_FRAMEWORK, **subclass})
    keys_only = {"DEFAULT_AUTHENTICATION_CLASSES": ["apiauth.authentication.APIKeyAuthentication"]}
    assert "apiauth.E025" not in ids(
        APIAUTH={}, REST_FRAMEWORK={**settings.REST_FRAMEWORK, **keys_only}
    )
    # ...or an issuer signs with our own keys (whose private halves are encrypted).
    local = {"ISSUERS": [{"ISSUER": "https://a", "AUDIENCES": ["b"], "KEYS": "local"}]}
    assert "apiauth.E025" in ids(
        APIAUTH={"JWT": local}, REST_FRAMEWORK={**settings.REST_FRAMEWORK, **keys_only}
    )
    assert "apiauth.E025" not in ids(
        APIAUTH={"JWT": local, "ENCRYPTION_KEYS": [KEY]},
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, **keys_only},
    )


def test_e026_encryption_key_is_the_secret_key() -> None:
    # A SECRET_KEY that happens to be a valid key.
    assert "apiauth.E026" in ids(SECRET_KEY=KEY, APIAUTH={"ENCRYPTION_KEYS": [KEY]})
    assert "apiauth.E026" not in ids(APIAUTH={"ENCRYPTION_KEYS": [KEY]})


def test_e027_encryption_key_twice() -> None:
    assert "apiauth.E027" in ids(APIAUTH={"ENCRYPTION_KEYS": [KEY, KEY]})
    assert "apiauth.E027" not in ids(APIAUTH={"ENCRYPTION_KEYS": [KEY, "A" * 43 + "="]})


def test_e019_hmac_settings() -> None:
    bad: Any
    for bad in (
        "x",
        {"SERVCE": "x"},
        {"SERVICE": "Upper"},
        {"REGIONS": []},
        {"REGIONS": "global"},
        {"ALGORITHM": "aws4 hmac"},
        {"SECRET_PREFIX": ""},
        {"HEADER_PREFIX": "Amz-"},
        {"MAX_CLOCK_SKEW": 901},
        {"MAX_CLOCK_SKEW": True},
        {"PRESIGNED_MAX_EXPIRES": 604_801},
        {"MAX_HEADER_SIZE": 10},
        {"ROTATION_GRACE": -1},
    ):
        assert "apiauth.E019" in ids(APIAUTH={"HMAC": bad}), bad
    good = {
        "SERVICE": "orders",
        "REGIONS": ["eu-west-1", "global"],
        "ALGORITHM": "ACME-HMAC-SHA256",
        "SECRET_PREFIX": "ACME",
        "HEADER_PREFIX": "X-Acme-",
        "MAX_CLOCK_SKEW": 900,
    }
    assert "apiauth.E019" not in ids(APIAUTH={"HMAC": good})


def test_e020_jwt_settings() -> None:
    def issuer(**entry: Any) -> dict[str, Any]:
        return {"ISSUERS": [{"ISSUER": "https://idp", "AUDIENCES": ["api"], **entry}]}

    pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
        "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
        "-----END PUBLIC KEY-----\n"
    )
    bad: Any
    for bad in (
        "x",
        {"NOPE": 1},
        {"LEEWAY": -1},
        {"SIGNING_ALGORITHM": "HS256"},
        {"RSA_KEY_SIZE": 1024},
        {"REVOCATION_FAILURE_MODE": "maybe"},
        {"ISSUERS": "x"},
    ):
        assert "apiauth.E020" in ids(APIAUTH={**settings.APIAUTH, "JWT": bad}), bad
    for bad in (
        {"ISSUERS": [{"AUDIENCES": ["a"], "KEYS": "local"}]},
        issuer(KEYS="local", BOGUS=1),
        issuer(),
        issuer(KEYS="local", AUDIENCES=[]),
        issuer(KEYS="local", AUDIENCES="api"),
        issuer(JWKS_URL="https://idp/jwks", ALGORITHMS=["RS256", "HS256"]),
        issuer(JWKS_URL="https://idp/jwks", ALGORITHMS=["none"]),
        issuer(KEYS=[{"pem": pem, "alg": "RS256"}]),
        issuer(KEYS=[{"pem": pem, "alg": "ES256"}], ALGORITHMS=["RS256"]),
        {"ISSUERS": [*issuer(KEYS="local")["ISSUERS"], *issuer(KEYS="local")["ISSUERS"]]},
    ):
        assert "apiauth.E030" in ids(APIAUTH={**settings.APIAUTH, "JWT": bad}), bad
    for good in (
        issuer(KEYS="local"),
        issuer(JWKS_URL="https://idp/jwks", ALGORITHMS=["RS256"], USER_FIELD="username"),
        issuer(KEYS=[{"pem": pem, "alg": "ES256", "kid": "k1"}]),
        issuer(SECRET="s" * 32),
    ):
        assert not {"apiauth.E020", "apiauth.E021", "apiauth.E030"} & ids(
            APIAUTH={**settings.APIAUTH, "JWT": good}
        ), good


def test_e031_two_local_issuers() -> None:
    local = {"ISSUER": "https://a", "AUDIENCES": ["b"], "KEYS": "local"}
    jwt = {"ISSUERS": [local, {**local, "ISSUER": "https://c"}]}
    assert "apiauth.E031" in ids(APIAUTH={**settings.APIAUTH, "JWT": jwt})
    assert "apiauth.E031" not in ids(APIAUTH={**settings.APIAUTH, "JWT": {"ISSUERS": [local]}})


def test_e032_access_tokens_longer_than_any_token() -> None:
    jwt = {"ACCESS_TOKEN_LIFETIME": 7200, "MAX_TOKEN_LIFETIME": 3600}
    assert "apiauth.E032" in ids(APIAUTH={**settings.APIAUTH, "JWT": jwt})
    jwt = {"ACCESS_TOKEN_LIFETIME": 3600, "MAX_TOKEN_LIFETIME": 3600}
    assert "apiauth.E032" not in ids(APIAUTH={**settings.APIAUTH, "JWT": jwt})


def test_e021_hs256_secret() -> None:
    for secret in ("short", "-----BEGIN PUBLIC KEY-----" + "x" * 40):
        jwt = {"ISSUERS": [{"ISSUER": "legacy", "AUDIENCES": ["api"], "SECRET": secret}]}
        assert "apiauth.E021" in ids(APIAUTH={**settings.APIAUTH, "JWT": jwt}), secret


KEYS_ONLY = {
    **settings.REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": ["apiauth.authentication.APIKeyAuthentication"],
}


def test_w011_issuers_without_jwt_authentication() -> None:
    assert "apiauth.W011" in ids(REST_FRAMEWORK=KEYS_ONLY)
    assert "apiauth.W011" not in ids()


def test_w012_jwt_authentication_without_issuers() -> None:
    no_issuers = {**settings.APIAUTH, "JWT": {"ISSUERS": []}}
    assert "apiauth.W012" in ids(APIAUTH=no_issuers)
    # A subclass counts (checks by type, not by dotted path).
    subclass = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_AUTHENTICATION_CLASSES": ["tests.testapp.auth.StrictJWTAuthentication"],
    }
    assert "apiauth.W011" not in ids(REST_FRAMEWORK=subclass)


def test_w013_hmac_settings_without_hmac_authentication() -> None:
    hmac = {**settings.APIAUTH, "HMAC": {"SERVICE": "orders"}, "JWT": {"ISSUERS": []}}
    assert "apiauth.W013" in ids(APIAUTH=hmac, REST_FRAMEWORK=KEYS_ONLY)
    assert "apiauth.W013" not in ids(APIAUTH=hmac)
