"""Verifying JWTs: shape, issuer, key, signature and claims, with a memo of verified tokens.

One shared :data:`verifier` serves :class:`~apiauth.authentication.JWTAuthentication` and the
token endpoints (introspection, revocation), so they share its memo; a project that customises
verification sets ``verifier`` on its authentication class (the endpoints use that one).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from apiauth import issuers, jose
from apiauth.conf import conf


def issued_at(claims: dict[str, Any]) -> float:
    """When one of our tokens was issued, to the millisecond when its ``jti`` says."""
    jti = claims.get("jti")
    if isinstance(jti, str) and len(jti) == 32 and jti[12] == "7" and _HEX.fullmatch(jti):
        return int(jti[:12], 16) / 1000
    return float(claims["iat"])


_HEX = re.compile(r"[0-9a-f]{32}")


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
        size = conf.jwt.verified_cache_size
        digest = None
        if size and token.isascii():
            digest = hashlib.sha256(token.encode("ascii")).digest()
            known = self.verified.get(digest)
            if known is not None and self.still_valid(known):
                return Verified(known.issuer, dict(known.claims), known.header, known.key)
        jws = jose.parse(token, conf.jwt.max_token_length)
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
        """The trusted issuer that the token's ``iss`` names (one without ``iss``: the issuer
        configured with ``ACCEPT_WITHOUT_ISS``, if any)."""
        iss = claims.get("iss")
        if "iss" not in claims:
            issuer = issuers.without_iss()
        else:
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


verifier = TokenVerifier()
"""The default verifier, shared by every class and endpoint that does not set its own."""
