"""Trusted token issuers, built from ``APIAUTH["JWT"]["ISSUERS"]``, and their keys.

An issuer's keys come from one of three places: our own signing keys (``"KEYS": "local"``,
:mod:`apiauth.keyring`), static keys in settings (JWKs or PEMs), or an identity provider's
JWKS URL (:class:`JWKSFetcher`). A token is verified only with a key of the issuer its ``iss``
names. The registry is built on first use and rebuilt when settings change, never at import.
"""

from __future__ import annotations

import email.message
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from apiauth import jose
from apiauth.conf import conf

logger = logging.getLogger("apiauth.jwks")

LOCAL = "local"


class KeysUnavailable(Exception):
    """An identity provider's key set has never been fetched successfully."""


class KeySource(Protocol):
    def find(self, kid: str | None, alg: str) -> jose.VerificationKey | None:
        """The key for this ``kid`` (or the only key for ``alg`` when the token names no
        ``kid``), or ``None``. May raise :class:`KeysUnavailable`."""


class StaticKeys:
    def __init__(self, keys: jose.KeySet) -> None:
        self.keys = keys

    def find(self, kid: str | None, alg: str) -> jose.VerificationKey | None:
        return self.keys.find(kid, alg)


class LocalKeys:
    """Our signing keys (next, active and retired) from the process's key ring."""

    def find(self, kid: str | None, alg: str) -> jose.VerificationKey | None:
        from apiauth.keyring import ring

        return ring.find(kid, alg)


def max_age(headers: email.message.Message | Mapping[str, str]) -> int | None:
    """``Cache-Control: max-age`` in seconds, when the response gives one."""
    for directive in str(headers.get("Cache-Control") or "").split(","):
        name, _sep, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.strip().isdigit():
            return int(value.strip())
    return None


class JWKSFetcher:
    """An identity provider's key set, fetched over HTTPS with a timeout and parsed once.

    Kept for the response's ``max-age`` within ``JWKS_MIN_CACHE``..``JWKS_MAX_CACHE``. A
    ``kid`` not in the set triggers a refetch at most once per ``JWKS_REFRESH_INTERVAL``
    seconds (a flood of made-up ``kid``\\ s is not a flood of fetches), and a failed refresh
    keeps the last good set. One thread fetches; the others use the set they have.
    """

    opener: Callable[..., Any] = staticmethod(urllib.request.urlopen)

    def __init__(
        self,
        url: str,
        algorithms: frozenset[str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithms = algorithms
        self.clock = clock
        self.lock = threading.Lock()
        self.keys: jose.KeySet | None = None
        self.expires_at = float("-inf")
        self.attempted_at = float("-inf")
        self.fetches = 0

    def find(self, kid: str | None, alg: str) -> jose.VerificationKey | None:
        now = self.clock()
        if now >= self.expires_at or (
            self.keys is not None
            and kid is not None
            and kid not in self.keys
            and now - self.attempted_at >= conf.jwt.jwks_refresh_interval
        ):
            self.refresh(now)
        if self.keys is None:
            raise KeysUnavailable(self.url)
        return self.keys.find(kid, alg)

    def refresh(self, now: float) -> None:
        if not self.lock.acquire(blocking=self.keys is None):
            return  # another thread is fetching: use the current set meanwhile
        try:
            if now - self.attempted_at < conf.jwt.jwks_refresh_interval and (
                self.keys is not None or now < self.expires_at
            ):
                return  # fetched (or failed) moments ago by another thread
            self.attempted_at = now
            settings = conf.jwt
            try:
                document, seconds = self.fetch()
                keys = self.parse(document)
            except Exception as exc:
                # Whatever went wrong (the network, HTTP, a document of any shape): keep the
                # last good set and try again after the refresh interval. A request must never
                # fail with our error, nor every request fetch again.
                logger.warning("could not refresh the JWKS at %s: %r", self.url, exc)
                self.expires_at = now + settings.jwks_refresh_interval
                return
            low, high = settings.jwks_min_cache, settings.jwks_max_cache
            self.keys = keys
            self.expires_at = now + min(
                max(float(seconds if seconds is not None else low), low), high
            )
        finally:
            self.lock.release()

    def fetch(self) -> tuple[Any, int | None]:
        """The parsed JSON and its max-age. Raises whatever the transport or parser raises."""
        settings = conf.jwt
        self.fetches += 1
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        limit = settings.jwks_max_bytes
        with self.opener(request, timeout=settings.jwks_timeout) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status}")
            body = response.read(limit + 1)
            if len(body) > limit:
                raise ValueError("the key set is too large")
            return json.loads(body), max_age(response.headers)

    def parse(self, document: Any) -> jose.KeySet:
        """Signing keys for the issuer's algorithms; others (encryption keys, unknown types)
        are skipped. A JWK without ``alg`` is bound to the issuer's one algorithm for its key
        type, when there is exactly one (Entra ID publishes keys without ``alg``)."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWK set")
        keys = []
        for jwk in document["keys"]:
            if not isinstance(jwk, dict):
                continue
            alg = jwk.get("alg")
            if alg is not None and not isinstance(alg, str):
                continue
            if alg is None:
                kty = jwk.get("kty")
                fits = [a for a in self.algorithms if jose.key_type(a) == kty]
                if len(fits) != 1:
                    continue
                alg = fits[0]
            if alg not in self.algorithms:
                continue
            try:
                keys.append(jose.VerificationKey.from_jwk(jwk, alg=alg))
            except jose.InvalidKey as exc:
                logger.info("skipping a key of %s: %s", self.url, exc)
        return jose.KeySet(keys)


@dataclass(frozen=True, eq=False)
class Issuer:
    iss: str
    algorithms: frozenset[str]
    policy: jose.ClaimsPolicy
    keys: KeySource
    local: bool = False
    user_field: str | None = None
    """The user model field that the token's ``USER_CLAIM`` names; ``None``: a machine."""
    user_claim: str = "sub"
    plan: str | None = None
    audience: str = ""
    """What the tokens we issue carry as ``aud``: the first of ``AUDIENCES``."""
    without_iss: bool = False
    """Tokens with no ``iss`` claim are this issuer's (another library's tokens during a
    cut-over, such as djangorestframework-simplejwt's)."""


def static_keys(entries: Any, algorithms: frozenset[str]) -> jose.KeySet:
    keys = []
    for entry in entries:
        if "pem" in entry:
            keys.append(jose.VerificationKey.from_pem(entry["pem"], entry["alg"], entry.get("kid")))
        else:
            keys.append(jose.VerificationKey.from_jwk(entry))
    for key in keys:
        if key.alg not in algorithms:
            raise jose.InvalidKey(
                f"key {key.kid!r} is for {key.alg}, which the issuer does not allow"
            )
    return jose.KeySet(keys)


def build(entry: Mapping[str, Any]) -> Issuer:
    """One issuer from its settings. Raises ``ValueError`` / ``KeyError`` for a bad entry
    (system check ``apiauth.E020`` reports them at startup)."""
    settings = conf.jwt
    iss = entry["ISSUER"]
    local = entry.get("KEYS") == LOCAL
    default_algorithms: tuple[str, ...] = (
        jose.SIGNING_ALGORITHMS if local else jose.DEFAULT_ALGORITHMS
    )
    if "SECRET" in entry:
        default_algorithms = ("HS256",)
    algorithms = frozenset(entry.get("ALGORITHMS") or default_algorithms)
    unknown = algorithms - set(jose.SUPPORTED)
    if unknown:
        raise ValueError(f"unsupported algorithm(s): {', '.join(sorted(unknown))}")
    if algorithms & jose.SYMMETRIC and algorithms - jose.SYMMETRIC:
        raise ValueError("HS256 cannot share an issuer with asymmetric algorithms")
    audiences = entry.get("AUDIENCES")
    if isinstance(audiences, str) or not audiences:
        raise ValueError("AUDIENCES must be a non-empty list")
    claims = entry.get("CLAIMS") or {}
    if not isinstance(claims, Mapping) or not all(isinstance(v, str) for v in claims.values()):
        raise ValueError("CLAIMS must map claim names to the string each must hold")
    types = entry.get("TYP", ["at+jwt"] if local else None)
    policy = jose.ClaimsPolicy(
        issuer=iss,
        audiences=frozenset(audiences),
        required=frozenset(entry.get("REQUIRED_CLAIMS", ("exp", "iat", "iss", "aud", "sub"))),
        leeway=settings.leeway,
        types=None if types is None else frozenset(jose.media_type(t) for t in types),
        max_lifetime=float(settings.max_token_lifetime),
        values=tuple(sorted((str(k), v) for k, v in claims.items())),
    )
    source: KeySource
    if local:
        source = LocalKeys()
    elif "JWKS_URL" in entry:
        source = JWKSFetcher(str(entry["JWKS_URL"]), algorithms)
    elif "SECRET" in entry:
        source = StaticKeys(jose.KeySet([jose.VerificationKey.from_secret(entry["SECRET"])]))
    elif isinstance(entry.get("KEYS"), list):
        source = StaticKeys(static_keys(entry["KEYS"], algorithms))
    else:
        raise ValueError('give KEYS ("local" or a list of keys), JWKS_URL or SECRET')
    return Issuer(
        iss=iss,
        algorithms=algorithms,
        policy=policy,
        keys=source,
        local=local,
        user_field=entry.get("USER_FIELD"),
        user_claim=entry.get("USER_CLAIM", "sub"),
        plan=entry.get("PLAN"),
        audience=audiences[0],
        without_iss=bool(entry.get("ACCEPT_WITHOUT_ISS")),
    )


def registry() -> dict[str, Issuer]:
    """Issuers by ``iss``, rebuilt when ``APIAUTH`` changes (a fetched key set lives as long
    as its settings)."""
    return conf.derive(_build_registry)


def _build_registry() -> dict[str, Issuer]:
    return {issuer.iss: issuer for issuer in map(build, conf.jwt.issuers)}


def without_iss() -> Issuer | None:
    """The issuer whose tokens carry no ``iss`` (``ACCEPT_WITHOUT_ISS``), if one is."""
    return next((issuer for issuer in registry().values() if issuer.without_iss), None)


def local_issuer() -> Issuer | None:
    """The issuer whose keys are ours: the one the token endpoint issues as."""
    return next((issuer for issuer in registry().values() if issuer.local), None)
