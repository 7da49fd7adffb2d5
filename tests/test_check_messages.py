"""What the system checks say, word for word, and where each range ends.

The id tests (``test_checks.py``) hold *that* a check fires; these hold what an operator reads:
every message and hint of a broad set of broken configurations is compared with
``tests/data/check_messages.txt``. After changing a message on purpose, regenerate the file
with ``APIAUTH_UPDATE_SNAPSHOTS=1 pytest tests/test_check_messages.py`` and read the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import Tags, run_checks
from django.test import override_settings

from apiauth import net
from apiauth.conf import HMAC_DEFAULTS, JWT_DEFAULTS

SNAPSHOT = Path(__file__).parent / "data" / "check_messages.txt"
KEY = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="
OTHER_KEY = "A" * 43 + "="
LOCAL = {"ISSUER": "https://a", "AUDIENCES": ["b"], "KEYS": "local"}
PEM = (
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
    "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
    "-----END PUBLIC KEY-----\n"
)
KEYS_ONLY = {
    **settings.REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": ["apiauth.authentication.APIKeyAuthentication"],
}
HMAC_ON = {
    **settings.REST_FRAMEWORK,
    "DEFAULT_AUTHENTICATION_CLASSES": ["apiauth.authentication.HMACAuthentication"],
}


def apiauth(**changes: Any) -> dict[str, Any]:
    return {"APIAUTH": {**settings.APIAUTH, **changes}}


def issuer(**entry: Any) -> dict[str, Any]:
    return apiauth(JWT={"ISSUERS": [{"ISSUER": "https://idp", "AUDIENCES": ["api"], **entry}]})


CASES: dict[str, dict[str, Any]] = {
    "not a dict": {"APIAUTH": ["KEY_PREFIX"]},
    "unknown settings": apiauth(NOPE=1, ALSO=2),
    "prefix": apiauth(KEY_PREFIX="my_prefix"),
    "proxies not a list": apiauth(TRUSTED_PROXIES="10.0.0.0/8"),
    "proxies": apiauth(TRUSTED_PROXIES=["socket", "0.0.0.0/0", "::/0", "10.0.0.0/16"]),
    "query param": apiauth(KEY_QUERY_PARAM="key"),
    "cache": apiauth(CREDENTIAL_CACHE_TTL=-1),
    "keys not a list": apiauth(ENCRYPTION_KEYS="k"),
    "keys malformed": apiauth(ENCRYPTION_KEYS=["short", 42, KEY, KEY]),
    "key is the secret key": {"SECRET_KEY": KEY, **apiauth(ENCRYPTION_KEYS=[KEY])},
    "keys missing for hmac": {**apiauth(ENCRYPTION_KEYS=[]), "REST_FRAMEWORK": HMAC_ON},
    "keys missing for jwt": {
        **apiauth(ENCRYPTION_KEYS=[], JWT={"ISSUERS": [LOCAL]}),
        "REST_FRAMEWORK": KEYS_ONLY,
    },
    "key header": apiauth(KEY_HEADER="Cookie"),
    "credential length": apiauth(MAX_CREDENTIAL_LENGTH=10),
    "client ip header": apiauth(CLIENT_IP_HEADER="Cookie"),
    "lockout": apiauth(FAILED_AUTH_LOCKOUT="sometimes"),
    "admin login limit": apiauth(LIMIT_ADMIN_LOGIN="yes"),
    "scope registry": apiauth(SCOPES={"orders:*": "All"}),
    "plans not a dict": apiauth(PLANS=["free"], DEFAULT_PLAN=None),
    "plan invalid": apiauth(PLANS={"free": {"rate": "often"}}, DEFAULT_PLAN="gold"),
    "scope rates not a dict": apiauth(SCOPE_RATES="10/min"),
    "other limits": apiauth(ANONYMOUS_LIMITS="often", SCOPE_RATES={"uploads": "x"}),
    "costs": apiauth(UNSAFE_METHOD_COST=0),
    "costs above limits": apiauth(
        UNSAFE_METHOD_COST=11, SCOPE_RATES={"uploads": {"quotas": ["3/day"]}, "imports": "5/min"}
    ),
    "breaker": apiauth(RATELIMIT_BREAKER_SECONDS=0),
    "ratelimit prefix": apiauth(RATELIMIT_KEY_PREFIX="{rl}:"),
    "no default plan": apiauth(DEFAULT_PLAN=None),
    "backend": apiauth(RATELIMIT_BACKEND="memcached"),
    "cache alias": apiauth(RATELIMIT_CACHE="missing"),
    "per process": apiauth(RATELIMIT_BACKEND="local"),
    "redis url": apiauth(REDIS_URL="memcache://x"),
    "redis options": apiauth(REDIS_URL="redis://h:1", REDIS_OPTIONS=[]),
    "local processes": apiauth(RATELIMIT_LOCAL_PROCESSES=0),
    "open": apiauth(RATELIMIT_FAILURE_MODE="open"),
    "hmac not a dict": apiauth(HMAC="x"),
    "hmac unknown": apiauth(HMAC={"SERVCE": "x", "REGION": "y"}),
    "hmac service": apiauth(HMAC={"SERVICE": "Upper"}),
    "hmac regions": apiauth(HMAC={"REGIONS": []}),
    "hmac algorithm": apiauth(HMAC={"ALGORITHM": "aws4 hmac"}),
    "hmac secret prefix": apiauth(HMAC={"SECRET_PREFIX": ""}),
    "hmac header prefix": apiauth(HMAC={"HEADER_PREFIX": "Amz-"}),
    "hmac bound": apiauth(HMAC={"MAX_HEADER_SIZE": 10}),
    "jwt not a dict": apiauth(JWT="x"),
    "jwt unknown": apiauth(JWT={"NOPE": 1, "ALSO": 2}),
    "jwt byte bound": apiauth(JWT={"JWKS_MAX_BYTES": 1}),
    "jwt cache bound": apiauth(JWT={"VERIFIED_CACHE_SIZE": -1}),
    "jwt bound": apiauth(JWT={"LEEWAY": -1}),
    "jwt count bound": apiauth(JWT={"MAX_TOKEN_LENGTH": 1}),
    "jwt lifetimes": apiauth(JWT={"ACCESS_TOKEN_LIFETIME": 7200, "MAX_TOKEN_LIFETIME": 3600}),
    "jwt algorithm": apiauth(JWT={"SIGNING_ALGORITHM": "HS256"}),
    "jwt rsa size": apiauth(JWT={"RSA_KEY_SIZE": 1024}),
    "jwt failure mode": apiauth(JWT={"REVOCATION_FAILURE_MODE": "maybe"}),
    "jwt claims hook": apiauth(JWT={"CLAIMS_HOOK": "no.such.hook"}),
    "jwt claims hook not a function": apiauth(JWT={"CLAIMS_HOOK": "apiauth.conf.DEFAULTS"}),
    "person limits": apiauth(PERSON_LIMITS="often"),
    "jwt issuers not a list": apiauth(JWT={"ISSUERS": "x"}),
    "issuer without iss": apiauth(JWT={"ISSUERS": [{"AUDIENCES": ["a"], "KEYS": "local"}]}),
    "issuer twice": apiauth(JWT={"ISSUERS": [LOCAL, LOCAL]}),
    "issuer unknown keys": issuer(KEYS="local", BOGUS=1, OTHER=2),
    "issuer audiences": issuer(KEYS="local", AUDIENCES="api"),
    "issuer key": issuer(KEYS=[{"pem": PEM, "alg": "RS256"}]),
    "issuer secret": issuer(SECRET="short"),
    "issuer nothing": issuer(),
    "two local issuers": apiauth(JWT={"ISSUERS": [LOCAL, {**LOCAL, "ISSUER": "https://c"}]}),
    "exception handler": {"REST_FRAMEWORK": {**settings.REST_FRAMEWORK, "EXCEPTION_HANDLER": None}},
    "middleware": {"MIDDLEWARE": []},
    "issuers without jwt": {**apiauth(JWT={"ISSUERS": [LOCAL]}), "REST_FRAMEWORK": KEYS_ONLY},
    "jwt without issuers": apiauth(JWT={}),
    "hmac without hmac authentication": {
        **apiauth(HMAC={"SERVICE": "orders"}),
        "REST_FRAMEWORK": KEYS_ONLY,
    },
}


def rendered(name: str, changes: dict[str, Any]) -> list[str]:
    with override_settings(**changes):
        messages = run_checks(tags=[Tags.security], include_deployment_checks=False)
    # Django keeps its checks in a set: their order differs between processes.
    ours = sorted(
        (str(m.id), str(m.msg), str(m.hint)) for m in messages if str(m.id).startswith("apiauth.")
    )
    lines = [f"## {name}"]
    for ident, msg, hint in ours:
        lines += [f"{ident}: {msg}", f"    hint: {hint}"]
    return lines


def test_every_message_and_hint_word_for_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "requests_without_address", 0)
    lines: list[str] = []
    for name, changes in CASES.items():
        lines += rendered(name, changes)
    monkeypatch.setattr(net, "requests_without_address", 3)
    lines += rendered("requests without an address", {})
    text = "\n".join(lines) + "\n"
    if os.environ.get("APIAUTH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_every_case_says_something() -> None:
    quiet = [name for name, changes in CASES.items() if len(rendered(name, changes)) == 1]
    assert quiet == []


def found(ids: str, **changes: Any) -> bool:
    with override_settings(**apiauth(**changes)):
        messages = run_checks(tags=[Tags.security], include_deployment_checks=False)
    return any(str(m.id) == ids for m in messages)


HMAC_BOUNDS = {
    "MAX_CLOCK_SKEW": (1, 900),
    "MAX_BODY_SIZE": (0, 1 << 31),
    "MAX_HEADER_SIZE": (256, 65536),
    "PRESIGNED_MAX_EXPIRES": (1, 604_800),
    "ROTATION_GRACE": (0, 30 * 86_400),
}
JWT_BOUNDS = {
    "LEEWAY": (0, 300),
    "MAX_TOKEN_LENGTH": (512, 65_536),
    "MAX_TOKEN_LIFETIME": (60, 30 * 86_400),
    "ACCESS_TOKEN_LIFETIME": (30, 86_400),
    "KEY_RING_TTL": (0, 3600),
    "JWKS_MAX_AGE": (0, 86_400),
    "REFRESH_TOKEN_LIFETIME": (60, 365 * 86_400),
    "REFRESH_FAMILY_LIFETIME": (60, 365 * 86_400),
    "JWKS_MIN_CACHE": (0, 86_400),
    "JWKS_MAX_CACHE": (60, 7 * 86_400),
    "JWKS_REFRESH_INTERVAL": (1, 3600),
    "JWKS_MAX_BYTES": (1024, 10 * 1024 * 1024),
    "VERIFIED_CACHE_SIZE": (0, 1_000_000),
    "AUTHORIZATION_CODE_LIFETIME": (10, 600),
}


@pytest.mark.parametrize(("name", "bounds"), HMAC_BOUNDS.items())
def test_each_hmac_range_ends_where_it_says(name: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    assert name in HMAC_DEFAULTS
    assert not found("apiauth.E019", HMAC={name: low})
    assert not found("apiauth.E019", HMAC={name: high})
    assert found("apiauth.E019", HMAC={name: low - 1})
    assert found("apiauth.E019", HMAC={name: high + 1})
    assert found("apiauth.E019", HMAC={name: float(low)})


@pytest.mark.parametrize(("name", "bounds"), JWT_BOUNDS.items())
def test_each_jwt_range_ends_where_it_says(name: str, bounds: tuple[int, int]) -> None:
    low, high = bounds
    assert name in JWT_DEFAULTS
    # The lifetimes are compared with each other too: keep the pair consistent.
    both = {"MAX_TOKEN_LIFETIME": 30 * 86_400} if name == "ACCESS_TOKEN_LIFETIME" else {}
    if name == "MAX_TOKEN_LIFETIME":
        both = {"ACCESS_TOKEN_LIFETIME": 30}
    assert not found("apiauth.E020", JWT={**both, name: low})
    assert not found("apiauth.E020", JWT={**both, name: high})
    assert found("apiauth.E020", JWT={**both, name: low - 1})
    assert found("apiauth.E020", JWT={**both, name: high + 1})
    assert found("apiauth.E020", JWT={**both, name: True})


def test_every_issuer_entry_is_judged() -> None:
    """A bad entry does not hide the ones after it."""
    entries = [{"AUDIENCES": ["a"]}, {**LOCAL, "BOGUS": 1}, {**LOCAL, "ISSUER": "x", "TYP": 5}]
    with override_settings(**apiauth(JWT={"ISSUERS": entries})):
        messages = run_checks(tags=[Tags.security], include_deployment_checks=False)
    assert sum(1 for m in messages if m.id == "apiauth.E030") == 3


@pytest.mark.parametrize(
    ("setting", "low", "high"),
    [("RATELIMIT_BREAKER_SECONDS", 0.001, 300), ("RATELIMIT_LOCAL_PROCESSES", 1, 10**6)],
)
def test_store_settings_ranges(setting: str, low: float, high: float) -> None:
    ids = "apiauth.E010" if setting == "RATELIMIT_BREAKER_SECONDS" else "apiauth.E024"
    assert not found(ids, **{setting: low}) and not found(ids, **{setting: high})
    assert found(ids, **{setting: True})
    if setting == "RATELIMIT_BREAKER_SECONDS":
        assert found(ids, **{setting: 300.001}) and found(ids, **{setting: 0})
    else:
        assert found(ids, **{setting: 0}) and found(ids, **{setting: 1.0})


def run(**changes: Any) -> list[Any]:
    with override_settings(**changes):
        return [
            m
            for m in run_checks(tags=[Tags.security], include_deployment_checks=False)
            if str(m.id).startswith("apiauth.")
        ]


def test_views_of_both_kinds_are_judged() -> None:
    from tests.checked_urls import PlainView, RestView

    registry = {"orders:read": "Read orders"}
    found = run(ROOT_URLCONF="tests.checked_urls", **apiauth(SCOPES=registry))
    costs = {m.obj: m.msg for m in found if m.id == "apiauth.E011"}
    scopes = {m.obj: m.msg for m in found if m.id == "apiauth.W008"}
    assert set(costs) == set(scopes) == {PlainView, RestView}
    assert costs[PlainView] == ("tests.checked_urls.PlainView (/plain) declares throttle_cost 0.")
    assert costs[RestView] == (
        "tests.checked_urls.RestView (/nested/rest) declares throttle_cost 0."
    )
    assert scopes[RestView].endswith("missing from APIAUTH['SCOPES']: rest:read.")


def test_settings_missing_altogether() -> None:
    with override_settings():
        del settings.REST_FRAMEWORK
        assert {m.id for m in run()} >= {"apiauth.W003"}
    with override_settings():
        del settings.APIAUTH
        # The defaults are checked: keys without a plan are not limited.
        assert "apiauth.W007" in {m.id for m in run()}


def test_the_classes_drf_names_may_be_classes_or_paths() -> None:
    from apiauth.throttling import TokenBucketThrottle

    rest = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_CLASSES": [TokenBucketThrottle]}
    assert "apiauth.W007" in {m.id for m in run(REST_FRAMEWORK=rest, **apiauth(DEFAULT_PLAN=None))}
    rest["DEFAULT_THROTTLE_CLASSES"] = [
        "no.such.Throttle",
        "apiauth.throttling.TokenBucketThrottle",
    ]
    assert "apiauth.W007" in {m.id for m in run(REST_FRAMEWORK=rest, **apiauth(DEFAULT_PLAN=None))}


def test_the_defaults_stand_in_for_missing_settings() -> None:
    # The anonymous limit's default burst is 20: a cost of 21 never passes it.
    found = run(APIAUTH={"UNSAFE_METHOD_COST": 21})
    assert any(m.id == "apiauth.E029" and "ANONYMOUS_LIMITS" in m.msg for m in found)
    keys = {"ENCRYPTION_KEYS": [KEY]}  # HMACAuthentication is on in the test settings
    assert not any(
        m.id.startswith("apiauth.E") for m in run(APIAUTH={**keys, "UNSAFE_METHOD_COST": 1})
    )
    assert not any(m.id.startswith("apiauth.E") for m in run(APIAUTH=keys))


@pytest.mark.parametrize(
    ("jwt", "bad"),
    [
        ({"RSA_KEY_SIZE": 3072}, False),
        ({"REVOCATION_FAILURE_MODE": "open"}, False),
        ({"REVOCATION_FAILURE_MODE": "closed"}, False),
        ({"ISSUERS": [1, 2]}, True),
        ({"ISSUERS": [LOCAL, 2]}, True),
    ],
)
def test_jwt_values(jwt: dict[str, Any], bad: bool) -> None:
    assert found("apiauth.E020", JWT={**settings.APIAUTH["JWT"], **jwt}) is bad


def test_hmac_regions_are_lowercase() -> None:
    assert found("apiauth.E019", HMAC={"REGIONS": ["EU-WEST"]})
    assert not found("apiauth.E019", HMAC={"REGIONS": ["eu-west-1"]})


def test_every_issuer_problem_is_reported() -> None:
    entries = [
        {**LOCAL, "ISSUER": "x1", "TYP": 5},
        {"AUDIENCES": ["a"]},
        {**LOCAL, "ISSUER": "x2", "BOGUS": 1},
        {"ISSUER": "x3", "AUDIENCES": ["a"], "KEYS": [{"pem": PEM, "alg": "RS256"}]},
        {"ISSUER": "x4", "AUDIENCES": ["a"], "SECRET": "short"},
        {**LOCAL, "ISSUER": "x1"},
        {"AUDIENCES": ["b"]},
    ]
    found_ids = [m.id for m in run(**apiauth(JWT={"ISSUERS": entries}))]
    assert found_ids.count("apiauth.E030") == 6
    assert found_ids.count("apiauth.E021") == 1
