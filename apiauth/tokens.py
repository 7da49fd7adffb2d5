"""Issuing our tokens: access tokens (RFC 9068 JWTs) and rotating refresh tokens in families
(verifying tokens is :mod:`apiauth.verification`'s).

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
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import router, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from apiauth import audit, issuers, revocation
from apiauth.conf import conf
from apiauth.keyring import NoSigningKey, ring
from apiauth.models import REFRESH_TOKEN_MARKER, APIKey, Application, RefreshToken, TokenFamily
from apiauth.scopes import granted_scopes, missing_scopes
from apiauth.store import StoreUnavailable
from apiauth.verification import issued_at

__all__ = ["GrantError", "Issued", "NoSigningKey", "issued_at"]

logger = logging.getLogger("apiauth.tokens")


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


REGISTERED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope", "sid", "typ"}
)
"""What a claims hook may not set: the claims our resource servers decide by."""


def access_token(
    client: APIKey | Application,
    scopes: list[str],
    sid: str | None = None,
    *,
    user: Any = None,
) -> tuple[str, int]:
    """A signed ``at+jwt`` (RFC 9068 §2.2) for ``client`` (an API key, or an application),
    acting for ``user`` when a person authorized it; its lifetime in seconds."""
    issuer = local_issuer()
    lifetime = conf.jwt.access_token_lifetime
    clock = time.time()
    now = int(clock)
    exp = now + lifetime
    if client.expires_at is not None:
        # Never outlive the client: its expiry ends its tokens anyway, say so in exp.
        exp = min(exp, int(client.expires_at.timestamp()))
    claims: dict[str, Any] = {
        "iss": issuer.iss,
        "sub": client.public_id if user is None else str(user.pk),
        "aud": issuer.audience,
        "exp": exp,
        "iat": now,
        "jti": new_jti(clock),
        "client_id": client.public_id,
        "scope": " ".join(scopes),
    }
    if sid is not None:
        claims["sid"] = sid
    hook = conf.jwt.claims_hook
    if hook:
        extra = import_string(hook)(dict(claims), client=client, user=user)
        # The registered claims are ours: a hook adds claims, it never changes these.
        claims = {
            **{k: v for k, v in (extra or {}).items() if k not in REGISTERED_CLAIMS},
            **claims,
        }
    return ring.get_signer().sign(claims), max(0, exp - now)


def new_jti(clock: float) -> str:
    """A UUIDv7 (RFC 9562 §5.7) in hex: 48 bits of the issue time in milliseconds, then
    random bits. ``iat`` is whole seconds (resource servers compare it with whole seconds);
    the ``jti`` tells which side of a "revoked before" mark a token was issued on."""
    value = (math.floor(clock * 1000) & (2**48 - 1)) << 80 | secrets.randbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return f"{value:032x}"


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def new_refresh_token(family: TokenFamily, now: datetime.datetime) -> str:
    raw = f"{conf.KEY_PREFIX}{REFRESH_TOKEN_MARKER}{secrets.token_urlsafe(32)}"
    lifetime = datetime.timedelta(seconds=conf.jwt.refresh_token_lifetime)
    RefreshToken.objects.create(
        family=family,
        token_hash=_hash(raw),
        created_at=now,
        expires_at=min(now + lifetime, family.expires_at),
    )
    return raw


def client_credentials(key: APIKey | Application, scope: str | None) -> Issued:
    """``grant_type=client_credentials`` for an authenticated API key (or a confidential
    application acting as itself)."""
    scopes = requested_scopes(scope, key.scopes)
    if not conf.jwt.refresh_tokens:
        token, expires_in = access_token(key, scopes)
        return Issued(token, expires_in, " ".join(scopes))
    now = timezone.now()
    lifetime = datetime.timedelta(seconds=conf.jwt.refresh_family_lifetime)
    ends = now + lifetime if key.expires_at is None else min(now + lifetime, key.expires_at)
    # Signed inside the transaction: without a signing key, no family is left behind.
    with transaction.atomic(using=router.db_for_write(TokenFamily)):
        client = {"application" if isinstance(key, Application) else "api_key": key}
        family = TokenFamily.objects.create(
            **client, scopes=scopes, created_at=now, expires_at=ends
        )
        refresh = new_refresh_token(family, now)
        token, expires_in = access_token(key, scopes, sid=str(family.id))
    return Issued(token, expires_in, " ".join(scopes), refresh)


def issued_to(family: TokenFamily, client: APIKey | Application) -> bool:
    """Whether ``family`` belongs to ``client`` (an API key, or an application)."""
    if isinstance(client, Application):
        return family.application_id == client.pk
    return family.api_key_id == client.pk


def refresh(client: APIKey | Application, raw: str, scope: str | None) -> Issued:
    """``grant_type=refresh_token``: spend ``raw`` and issue the family's next pair."""
    now = timezone.now()
    reused: TokenFamily | None = None
    with transaction.atomic(using=router.db_for_write(RefreshToken)):
        token = find_refresh_token(raw)
        if token is None or not issued_to(token.family, client):
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
            scopes = requested_scopes(scope, granted_scopes(family.scopes, client.scopes))
            family.refreshed_at = now
            family.save(update_fields=["refreshed_at"])
            new_raw = new_refresh_token(family, now)
            # Signed before the refresh token is spent for good: a failure here (no signing
            # key) rolls the spending back, so the client's retry is not taken for reuse.
            token_value, expires_in = access_token(
                client, scopes, sid=str(family.id), user=family.user
            )
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
        RefreshToken.objects.select_related(
            "family__api_key__owner", "family__application__owner", "family__user"
        )
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
    revocation.revoke_family(family.lineage, str(family.id))
    return bool(updated)
