"""Settings for apiauth, read from the single ``APIAUTH`` dict.

Reading on first access (never at import time) keeps ``override_settings`` working in tests.
The dict and each scalar setting read from it are kept, and forgotten when Django announces a
change (``setting_changed``, sent by ``override_settings``): the reads of every request are
then plain attribute reads.

``conf.jwt`` and ``conf.hmac`` are the ``JWT`` and ``HMAC`` sub-dicts read once into frozen,
typed dataclasses; :meth:`Settings.derive` keeps anything else computed from the settings
(the SigV4 policy, the issuer registry, parsed limits) until they change: one mechanism, one
moment of forgetting, like DRF's ``api_settings.reload()``.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar, overload

from django.conf import settings
from django.core.signals import setting_changed

T = TypeVar("T")

DEFAULTS: dict[str, Any] = {
    # API keys.
    "KEY_PREFIX": "apk",
    "KEY_HEADER": "X-API-Key",
    "KEY_QUERY_PARAM": None,
    "MAX_CREDENTIAL_LENGTH": 512,
    "LAST_USED_INTERVAL": 60,
    "CREDENTIAL_CACHE_TTL": 60.0,
    "CREDENTIAL_CACHE_SIZE": 10_000,
    "SCOPES": {},
    # Secrets kept encrypted at rest (HMAC secrets, signing keys): the first key encrypts.
    "ENCRYPTION_KEYS": [],
    # HMAC request signing (AWS Signature Version 4), merged over HMAC_DEFAULTS.
    "HMAC": {},
    # JSON Web Tokens: trusted issuers, our signing keys and the token endpoint, merged over
    # JWT_DEFAULTS.
    "JWT": {},
    # Network.
    "TRUSTED_PROXIES": [],
    "CLIENT_IP_HEADER": "X-Forwarded-For",
    # Rate limits.
    "PLANS": {},
    "DEFAULT_PLAN": None,
    "ANONYMOUS_LIMITS": {"rate": "60/min", "burst": 20},
    "FAILED_AUTH_LIMITS": {"rate": "10/min", "burst": 20},
    "FAILED_AUTH_LOCKOUT": "failures",
    # The default admin site's login under the failed-authentication limiter (apiauth.login).
    "LIMIT_ADMIN_LOGIN": True,
    "SCOPE_RATES": {},
    # Each person's own limits when they call the API through an application (besides the
    # application's plan, which all its people share).
    "PERSON_LIMITS": {"rate": "120/min", "burst": 60},
    "UNSAFE_METHOD_COST": 1,
    "RATELIMIT_BACKEND": "auto",
    "RATELIMIT_CACHE": "default",
    "RATELIMIT_KEY_PREFIX": "rl:",
    "RATELIMIT_FAILURE_MODE": "local",
    "RATELIMIT_LOCAL_PROCESSES": 1,
    "RATELIMIT_BREAKER_SECONDS": 5.0,
    # The store's own Redis client (one server, Sentinel or Cluster): see apiauth.store.clients.
    "REDIS_URL": None,
    "REDIS_OPTIONS": {},
    # Errors and audit.
    "PROBLEM_TYPE_BASE": "urn:apiauth:problem:",
    "REALM": "api",
}

HMAC_DEFAULTS: dict[str, Any] = {
    "SERVICE": "apiauth",
    "REGIONS": ["global"],
    "ALGORITHM": "AWS4-HMAC-SHA256",
    "SECRET_PREFIX": "AWS4",
    "HEADER_PREFIX": "X-Amz-",
    "MAX_CLOCK_SKEW": 300,
    "MAX_BODY_SIZE": 10 * 1024 * 1024,
    "MAX_HEADER_SIZE": 8192,
    "ALLOW_UNSIGNED_PAYLOAD": False,
    "PRESIGNED_MAX_EXPIRES": 3600,
    "REPLAY_PROTECTION": True,
    "ROTATION_GRACE": 86_400,
}


JWT_DEFAULTS: dict[str, Any] = {
    # Trusted issuers, each a dict: ISSUER, AUDIENCES, and KEYS ("local": our signing keys;
    # or a list of JWKs / {"kid", "alg", "pem"}), JWKS_URL, or SECRET (HS256 only). See README.
    "ISSUERS": [],
    "LEEWAY": 30,
    "MAX_TOKEN_LENGTH": 8192,
    "MAX_TOKEN_LIFETIME": 86_400,
    # Tokens we issue (the issuer whose KEYS is "local").
    "ACCESS_TOKEN_LIFETIME": 900,
    "SIGNING_ALGORITHM": "ES256",
    "RSA_KEY_SIZE": 2048,
    "KEY_RING_TTL": 10,
    "JWKS_MAX_AGE": 300,
    "REFRESH_TOKENS": False,
    "REFRESH_TOKEN_LIFETIME": 14 * 86_400,
    "REFRESH_FAMILY_LIFETIME": 30 * 86_400,
    "INTROSPECTION_SCOPE": "tokens:introspect",
    # External issuers' key sets.
    "JWKS_TIMEOUT": 3.0,
    "JWKS_MIN_CACHE": 60,
    "JWKS_MAX_CACHE": 86_400,
    "JWKS_REFRESH_INTERVAL": 30,
    "JWKS_MAX_BYTES": 512 * 1024,
    # Tokens whose signature verified, remembered per process (0: verify every request).
    "VERIFIED_CACHE_SIZE": 4096,
    # When Redis cannot say whether a token was revoked: "database" (ask the database, the
    # source of truth: one query), "closed" (503) or "open".
    "REVOCATION_FAILURE_MODE": "database",
    # A dotted path to ``hook(claims, *, client, user) -> dict`` whose claims are added to the
    # access tokens we issue (the registered claims stay ours).
    "CLAIMS_HOOK": None,
    # People's tokens (the authorization code grant): how long a code lives.
    "AUTHORIZATION_CODE_LIFETIME": 60,
}


def typed(cls: type[T], merged: dict[str, Any]) -> T:
    """A settings dataclass from its merged dict: each field its upper-case key, converted to
    the field's type."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    values = {field.name: _typed(field.type, merged[field.name.upper()]) for field in fields}
    return cls(**values)


@dataclasses.dataclass(frozen=True, slots=True)
class JWTSettings:
    """``APIAUTH["JWT"]`` merged over :data:`JWT_DEFAULTS`, typed (``conf.jwt``)."""

    issuers: tuple[Any, ...]
    leeway: float
    max_token_length: int
    max_token_lifetime: int
    access_token_lifetime: int
    signing_algorithm: str
    rsa_key_size: int
    key_ring_ttl: float
    jwks_max_age: int
    refresh_tokens: bool
    refresh_token_lifetime: int
    refresh_family_lifetime: int
    introspection_scope: str
    jwks_timeout: float
    jwks_min_cache: float
    jwks_max_cache: float
    jwks_refresh_interval: float
    jwks_max_bytes: int
    verified_cache_size: int
    revocation_failure_mode: str
    claims_hook: str | None
    authorization_code_lifetime: int


@dataclasses.dataclass(frozen=True, slots=True)
class HMACSettings:
    """``APIAUTH["HMAC"]`` merged over :data:`HMAC_DEFAULTS`, typed (``conf.hmac``)."""

    service: str
    regions: frozenset[str]
    algorithm: str
    secret_prefix: str
    header_prefix: str
    max_clock_skew: int
    max_body_size: int
    max_header_size: int
    allow_unsigned_payload: bool
    presigned_max_expires: int
    replay_protection: bool
    rotation_grace: int


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "tuple[Any, ...]": lambda value: tuple(value or ()),
    "frozenset[str]": lambda value: frozenset(str(item) for item in value or ()),
    "str | None": lambda value: str(value) if value else None,
}


def _typed(annotation: Any, value: Any) -> Any:
    return _CONVERTERS[str(annotation)](value)


_MISSING = object()
_building = threading.RLock()  # reentrant: a build may derive what it needs


def _raw(value: Any) -> Any:
    return value


def _str_or_none(value: Any) -> str | None:
    return str(value) if value else None


def _float_or_zero(value: Any) -> float:
    return float(value or 0)


class _setting(Generic[T]):
    """A scalar setting, converted on first read and then kept in the instance's ``__dict__``
    until ``APIAUTH`` changes (:meth:`Settings.reload` empties it). A non-data descriptor:
    once read, it is a plain attribute, where a property ran a method, a lookup and a
    conversion on each of the half-dozen reads of every request."""

    def __init__(self, convert: Callable[[Any], T]) -> None:
        self.convert = convert
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> _setting[T]: ...

    @overload
    def __get__(self, instance: Settings, owner: type | None = None) -> T: ...

    def __get__(self, instance: Settings | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.convert(instance._get(self.name))
        return value


class Settings:
    """Typed, read-through access to ``settings.APIAUTH``."""

    _user: dict[str, Any] | None = None
    _hmac: dict[str, Any] | None = None
    _jwt: dict[str, Any] | None = None
    _derived: dict[Any, Any] | None = None

    def _get(self, name: str) -> Any:
        user = self._user
        if user is None:
            user = self._user = getattr(settings, "APIAUTH", None) or {}
        return user.get(name, DEFAULTS[name])

    def reload(self, *, setting: str = "APIAUTH", **kwargs: Any) -> None:
        """``setting_changed`` receiver."""
        if setting == "APIAUTH":
            # Everything read or derived: the dict, the typed sub-dicts, each _setting.
            self.__dict__.clear()

    @property
    def derived(self) -> dict[Any, Any]:
        """Values computed from these settings: dropped when they change (see :meth:`derive`)."""
        derived = self._derived
        if derived is None:
            derived = self._derived = {}
        return derived

    def derive(self, build: Callable[[], T], key: Hashable | None = None) -> T:
        """``build()``, computed once until ``APIAUTH`` changes (``key`` defaults to
        ``build`` itself)."""
        name = build if key is None else key
        derived = self._derived
        if derived is not None:  # read on every request: no property, no exception
            value = derived.get(name, _MISSING)
            if value is not _MISSING:
                return value  # type: ignore[no-any-return]
        with _building:  # one build at a time: two threads must not fetch one JWKS twice
            derived = self.derived
            if name not in derived:
                derived[name] = build()
            return derived[name]  # type: ignore[no-any-return]

    @property
    def jwt(self) -> JWTSettings:
        """The ``JWT`` settings, typed (validated by the system checks)."""
        return self.derive(lambda: typed(JWTSettings, self.JWT), key=JWTSettings)

    @property
    def hmac(self) -> HMACSettings:
        """The ``HMAC`` settings, typed (validated by the system checks)."""
        return self.derive(lambda: typed(HMACSettings, self.HMAC), key=HMACSettings)

    KEY_PREFIX = _setting(str)
    KEY_HEADER = _setting(str)

    @functools.cached_property
    def key_meta_name(self) -> str:
        """``KEY_HEADER`` as WSGI names it in ``request.META`` (kept as the settings are)."""
        return "HTTP_" + self.KEY_HEADER.upper().replace("-", "_")

    KEY_QUERY_PARAM = _setting(_str_or_none)
    MAX_CREDENTIAL_LENGTH = _setting(int)
    LAST_USED_INTERVAL = _setting(int)
    CREDENTIAL_CACHE_TTL = _setting(_float_or_zero)
    CREDENTIAL_CACHE_SIZE = _setting(int)

    @property
    def SCOPES(self) -> dict[str, str]:
        return dict(self._get("SCOPES") or {})

    @property
    def ENCRYPTION_KEYS(self) -> list[str]:
        return list(self._get("ENCRYPTION_KEYS") or [])

    @property
    def HMAC(self) -> dict[str, Any]:
        """``APIAUTH["HMAC"]`` merged over :data:`HMAC_DEFAULTS` (validated by system checks)."""
        merged = self._hmac
        if merged is None:
            merged = self._hmac = {**HMAC_DEFAULTS, **(self._get("HMAC") or {})}
        return merged

    @property
    def JWT(self) -> dict[str, Any]:
        """``APIAUTH["JWT"]`` merged over :data:`JWT_DEFAULTS` (validated by system checks)."""
        merged = self._jwt
        if merged is None:
            merged = self._jwt = {**JWT_DEFAULTS, **(self._get("JWT") or {})}
        return merged

    @property
    def TRUSTED_PROXIES(self) -> list[str]:
        return list(self._get("TRUSTED_PROXIES"))

    CLIENT_IP_HEADER = _setting(str)

    @property
    def PLANS(self) -> dict[str, dict[str, Any]]:
        return dict(self._get("PLANS"))

    DEFAULT_PLAN = _setting(_str_or_none)
    ANONYMOUS_LIMITS = _setting(_raw)
    FAILED_AUTH_LIMITS = _setting(_raw)
    FAILED_AUTH_LOCKOUT = _setting(str)
    LIMIT_ADMIN_LOGIN = _setting(bool)
    PERSON_LIMITS = _setting(_raw)

    @property
    def SCOPE_RATES(self) -> dict[str, Any]:
        return dict(self._get("SCOPE_RATES"))

    UNSAFE_METHOD_COST = _setting(int)
    RATELIMIT_BACKEND = _setting(str)
    RATELIMIT_CACHE = _setting(str)
    RATELIMIT_KEY_PREFIX = _setting(str)
    RATELIMIT_FAILURE_MODE = _setting(str)
    RATELIMIT_LOCAL_PROCESSES = _setting(int)
    REDIS_URL = _setting(_str_or_none)

    @property
    def REDIS_OPTIONS(self) -> dict[str, Any]:
        return dict(self._get("REDIS_OPTIONS") or {})

    RATELIMIT_BREAKER_SECONDS = _setting(float)
    PROBLEM_TYPE_BASE = _setting(str)
    REALM = _setting(str)


conf = Settings()
setting_changed.connect(conf.reload, dispatch_uid="apiauth-conf")
