"""Issuing our tokens: access tokens (RFC 9068 JWTs) and rotating refresh tokens in families.

The views in :mod:`apiauth.views` speak OAuth 2.0 over HTTP; this module is what they do, so
code and management commands can do it too. A refresh token is opaque
(``<prefix>rt_<43 random characters>``), stored as its SHA-256, spent once, and belongs to a
family (RFC 9700 §4.14): presenting a spent one revokes the family and, through a revocation
mark on its ``sid``, every access token issued in it.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from apiauth import audit, issuers, jose, revocation
from apiauth.conf import conf
from apiauth.keyring import NoSigningKey, ring
from apiauth.models import REFRESH_TOKEN_MARKER, APIKey, RefreshToken, TokenFamily
from apiauth.scopes import granted_scopes, missing_scopes
from apiauth.store import StoreUnavailable

logger = logging.getLogger("apiauth.tokens")

__all__ = ["GrantError", "NoSigningKey", "Issued"]


class GrantError(Exception):
    """An OAuth 2.0 error (RFC 6749 §5.2): ``error`` is its code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True, slots=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None

    def as_response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def local_issuer() -> issuers.Issuer:
    issuer = issuers.local_issuer()
    if issuer is None:
        raise NoSigningKey('No issuer in APIAUTH["JWT"]["ISSUERS"] has KEYS "local".')
    return issuer


def requested_scopes(value: str | None, allowed: Iterable[str]) -> list[str]:
    """The scopes asked for, each granted by ``allowed``; all of ``allowed`` when none are
    asked for. Raises ``invalid_scope``."""
    allowed = list(allowed)
    if value is None:
        return sorted(allowed)
    asked = value.split(" ")
    if not value or any(not scope or not scope.isprintable() for scope in asked):
        raise GrantError("invalid_scope", "The scope parameter is malformed.")
    if missing_scopes(asked, allowed):
        raise GrantError("invalid_scope", "The client may not have these scopes.")
    return sorted(set(asked))


def access_token(key: APIKey, scopes: list[str], sid: str | None = None) -> tuple[str, int]:
    """A signed ``at+jwt`` for ``key`` (RFC 9068 §2.2); its lifetime in seconds."""
    issuer = local_issuer()
    lifetime = int(conf.JWT["ACCESS_TOKEN_LIFETIME"])
    clock = time.time()
    now = int(clock)
    exp = now + lifetime
    if key.expires_at is not None:
        # Never outlive the key: its expiry ends its tokens anyway, say so in exp.
        exp = min(exp, int(key.expires_at.timestamp()))
    claims: dict[str, Any] = {
        "iss": issuer.iss,
        "sub": key.public_id,
        "aud": issuer.audience,
        "exp": exp,
        "iat": now,
        "jti": new_jti(clock),
        "client_id": key.public_id,
        "scope": " ".join(scopes),
    }
    if sid is not None:
        claims["sid"] = sid
    return ring.get_signer().sign(claims), max(0, exp - now)


def new_jti(clock: float) -> str:
    """A UUIDv7 (RFC 9562 §5.7) in hex: 48 bits of the issue time in milliseconds, then
    random bits. ``iat`` is whole seconds (resource servers compare it with whole seconds);
    the ``jti`` tells which side of a "revoked before" mark a token was issued on."""
    value = (math.floor(clock * 1000) & (2**48 - 1)) << 80 | secrets.randbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return f"{value:032x}"


def issued_at(claims: dict[str, Any]) -> float:
    """When one of our tokens was issued, to the millisecond when its ``jti`` says."""
    jti = claims.get("jti")
    if isinstance(jti, str) and len(jti) == 32 and jti[12] == "7" and _HEX.fullmatch(jti):
        return int(jti[:12], 16) / 1000
    return float(claims["iat"])


_HEX = re.compile(r"[0-9a-f]{32}")


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_refresh_token(family: TokenFamily, now: datetime.datetime) -> str:
    raw = f"{conf.KEY_PREFIX}{REFRESH_TOKEN_MARKER}{secrets.token_urlsafe(32)}"
    lifetime = datetime.timedelta(seconds=int(conf.JWT["REFRESH_TOKEN_LIFETIME"]))
    RefreshToken.objects.create(
        family=family,
        token_hash=_hash(raw),
        created_at=now,
        expires_at=min(now + lifetime, family.expires_at),
    )
    return raw


def client_credentials(key: APIKey, scope: str | None) -> Issued:
    """``grant_type=client_credentials`` for an authenticated API key."""
    scopes = requested_scopes(scope, key.scopes)
    if not conf.JWT["REFRESH_TOKENS"]:
        token, expires_in = access_token(key, scopes)
        return Issued(token, expires_in, " ".join(scopes))
    now = timezone.now()
    lifetime = datetime.timedelta(seconds=int(conf.JWT["REFRESH_FAMILY_LIFETIME"]))
    ends = now + lifetime if key.expires_at is None else min(now + lifetime, key.expires_at)
    # Signed inside the transaction: without a signing key, no family is left behind.
    with transaction.atomic(using=router.db_for_write(TokenFamily)):
        family = TokenFamily.objects.create(
            api_key=key, scopes=scopes, created_at=now, expires_at=ends
        )
        refresh = new_refresh_token(family, now)
        token, expires_in = access_token(key, scopes, sid=str(family.id))
    return Issued(token, expires_in, " ".join(scopes), refresh)


def refresh(key: APIKey, raw: str, scope: str | None) -> Issued:
    """``grant_type=refresh_token``: spend ``raw`` and issue the family's next pair."""
    now = timezone.now()
    reused: TokenFamily | None = None
    with transaction.atomic(using=router.db_for_write(RefreshToken)):
        token = find_refresh_token(raw)
        if token is None or token.family.api_key_id != key.pk:
            raise GrantError("invalid_grant", "The refresh token is invalid.")
        family = token.family
        if not family.is_live:
            raise GrantError("invalid_grant", "The refresh token's grant has ended.")
        spent = RefreshToken.objects.filter(pk=token.pk, used_at__isnull=True).update(used_at=now)
        if not spent:
            reused = family
        elif token.expires_at <= now:
            raise GrantError("invalid_grant", "The refresh token has expired.")
        else:
            scopes = requested_scopes(scope, granted_scopes(family.scopes, key.scopes))
            family.refreshed_at = now
            family.save(update_fields=["refreshed_at"])
            new_raw = new_refresh_token(family, now)
            # Signed before the refresh token is spent for good: a failure here (no signing
            # key) rolls the spending back, so the client's retry is not taken for reuse.
            token_value, expires_in = access_token(key, scopes, sid=str(family.id))
    if reused is not None:
        # Outside the transaction above: the revocation stands although the grant fails.
        audit.record("reuse", reused, reason="a spent refresh token was presented")
        try:
            revoke_family(reused, reason="refresh token reused")
        except StoreUnavailable:
            logger.error(
                "family %s revoked for reuse, but its access tokens live until they expire: "
                "Redis is unavailable",
                reused.pk,
            )
        raise GrantError("invalid_grant", "The refresh token was already used.")
    return Issued(token_value, expires_in, " ".join(scopes), new_raw)


def find_refresh_token(raw: str) -> RefreshToken | None:
    prefix = f"{conf.KEY_PREFIX}{REFRESH_TOKEN_MARKER}"
    if not raw.startswith(prefix) or len(raw) > 200 or not raw.isascii():
        return None
    return (
        RefreshToken.objects.select_related("family__api_key__owner")
        .filter(token_hash=_hash(raw))
        .first()
    )


def revoke_family(family: TokenFamily, *, reason: str) -> bool:
    """End a family: its refresh tokens and its access tokens (a mark on their ``sid``).
    Returns ``False`` when it had ended already. Raises
    :class:`~apiauth.store.StoreUnavailable` when the mark could not be written
    (the refresh tokens are revoked all the same)."""
    updated = TokenFamily.objects.filter(pk=family.pk, revoked_at__isnull=True).update(
        revoked_at=timezone.now(), revoked_reason=reason[:500]
    )
    family.refresh_from_db(fields=["revoked_at", "revoked_reason"])
    revocation.revoke_family(str(family.api_key.lineage), str(family.id))
    return bool(updated)


@dataclass(frozen=True, slots=True)
class Verified:
    issuer: issuers.Issuer
    claims: dict[str, Any]
    header: dict[str, Any] = field(default_factory=dict)
    key: jose.VerificationKey | None = None


class TokenVerifier:
    """Shape → issuer → key → signature → claims, with each step a hook. Used by
    :class:`~apiauth.authentication.JWTAuthentication` (its ``verifier`` attribute) and by
    introspection. Raises :class:`jose.TokenError`, or :class:`issuers.KeysUnavailable`.

    A client sends the same token for minutes, so the signature of a token that verified is
    not checked again: the verifier remembers the last ``VERIFIED_CACHE_SIZE`` tokens (by
    SHA-256) with their issuer, key, header and claims. A remembered token is accepted only if
    its issuer and key are still the very objects that verified it (a changed setting, a
    reloaded key ring or JWKS, a revoked signing key: verified again, from scratch) and its
    claims pass the issuer's policy now (expiry). Revocation is not remembered: it is checked
    on every request, after this.
    """

    clock = staticmethod(time.time)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.verified: dict[bytes, Verified] = {}

    def verify(self, token: str) -> Verified:
        size = int(conf.JWT["VERIFIED_CACHE_SIZE"])
        digest = None
        if size and token.isascii():
            digest = hashlib.sha256(token.encode("ascii")).digest()
            known = self.verified.get(digest)
            if known is not None and self.still_valid(known):
                return Verified(known.issuer, dict(known.claims), known.header, known.key)
        jws = jose.parse(token, int(conf.JWT["MAX_TOKEN_LENGTH"]))
        claims = jose.decode_claims(jws)
        issuer = self.get_issuer(claims)
        key = self.get_verifying_key(issuer, jws)
        jose.verify_signature(jws, key)
        issuer.policy.check(jws.header, claims, self.clock())
        verified = Verified(issuer, claims, jws.header, key)
        if digest is not None:
            self.remember(digest, verified, size)
            verified = Verified(issuer, dict(claims), jws.header, key)
        return verified

    def still_valid(self, known: Verified) -> bool:
        """The issuer and key that verified ``known`` are still trusted; its claims are
        checked again (raises :class:`jose.TokenError` as the full path would)."""
        issuer = known.issuer
        if issuers.registry().get(issuer.iss) is not issuer:
            return False
        kid = known.header.get("kid")
        if issuer.keys.find(kid if isinstance(kid, str) else None, known.header["alg"]) is not (
            known.key
        ):
            return False
        issuer.policy.check_times(known.claims, self.clock())
        return True

    def remember(self, digest: bytes, verified: Verified, size: int) -> None:
        with self.lock:
            while len(self.verified) >= size:  # the oldest first
                del self.verified[next(iter(self.verified))]
            self.verified[digest] = verified

    def clear(self) -> None:
        with self.lock:
            self.verified.clear()

    def get_issuer(self, claims: dict[str, Any]) -> issuers.Issuer:
        """The trusted issuer that the token's ``iss`` names."""
        iss = claims.get("iss")
        issuer = issuers.registry().get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise jose.TokenError("invalid_issuer", "The token's issuer is not trusted.")
        return issuer

    def get_verifying_key(self, issuer: issuers.Issuer, jws: jose.JWS) -> jose.VerificationKey:
        """The issuer's key for the token's ``kid``, bound to one algorithm."""
        if jws.alg not in issuer.algorithms:
            raise jose.TokenError("alg_not_allowed", "The token's algorithm is not accepted.")
        key = issuer.keys.find(jws.kid, jws.alg)
        if key is None:
            raise jose.TokenError("unknown_kid", "The token's signing key is unknown.")
        return key
