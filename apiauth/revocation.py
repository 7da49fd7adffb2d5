"""Revoking JWTs before they expire: marks in Redis, checked in the rate limiter's round trip.

A token is signed and self-contained, so revoking one means remembering, until it would have
expired anyway, that it must be refused. Every mark is a time: a token **issued at or before**
it is revoked. A denied ``jti`` or a revoked refresh family holds a time beyond any token's
``iat``; a "revoked before" mark for a client (an API key's lineage) or a user holds the moment
of revocation, so one write cuts off every token issued until then.

Every mark of a token lives under the hash tag of the token's lineage, the one its rate-limit
buckets use, so the throttle's script checks them with the buckets in one round trip (one
Redis Cluster slot). A mark lives as long as the tokens it covers can: ``exp − now`` for a
``jti``, ``MAX_TOKEN_LIFETIME`` (the verifier refuses longer-lived tokens) for the others.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from apiauth.conf import conf
from apiauth.throttling.backends import get_backend
from apiauth.throttling.limiter import key_for, lineage_identity

logger = logging.getLogger("apiauth.revocation")

FOREVER = 2**53
"""A mark later than any token's ``iat``: revoked, whenever issued."""


def user_lineage(user_pk: Any) -> str:
    """The lineage of tokens that name a user and no API key (external identity providers)."""
    return f"user-{user_pk}"


def subject_lineage(issuer: str, subject: str) -> str:
    """The lineage of an external issuer's machine subject (an issuer without ``USER_FIELD``):
    its rate limits, and the marks that revoke its tokens."""
    digest = hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()
    return f"sub-{digest[:24]}"


def _key(lineage: str, name: str) -> str:
    return key_for(lineage_identity(lineage), name)


def jti_mark(lineage: str, jti: str) -> str:
    # Hashed: a jti is the issuer's text, of any length and alphabet.
    return _key(lineage, "jwt:jti:" + hashlib.sha256(jti.encode()).hexdigest()[:32])


def lineage_mark(lineage: str) -> str:
    return _key(lineage, "jwt:before")


def family_mark(lineage: str, sid: str) -> str:
    return _key(lineage, "jwt:sid:" + hashlib.sha256(sid.encode()).hexdigest()[:32])


def marks_for(lineage: str, claims: dict[str, Any]) -> tuple[str, ...]:
    """The marks that may revoke a token of ``lineage`` with these claims."""
    jti, sid = claims.get("jti"), claims.get("sid")
    return _marks(
        conf.RATELIMIT_KEY_PREFIX,
        lineage,
        jti if isinstance(jti, str) else None,
        sid if isinstance(sid, str) else None,
    )


@lru_cache(maxsize=4096)  # a token is presented again and again: hash its names once
def _marks(prefix: str, lineage: str, jti: str | None, sid: str | None) -> tuple[str, ...]:
    marks = [lineage_mark(lineage)]
    if jti is not None:
        marks.append(jti_mark(lineage, jti))
    if sid is not None:
        marks.append(family_mark(lineage, sid))
    return tuple(marks)


def mark_ttl_ms() -> int:
    settings = conf.JWT
    return (int(settings["MAX_TOKEN_LIFETIME"]) + int(settings["LEEWAY"])) * 1000


def _set(key: str, value: float, ttl_ms: int) -> None:
    """Raises :class:`BackendUnavailable`: a revocation that did not happen must say so."""
    get_backend().mark(key, value, ttl_ms)


def revoke_jti(lineage: str, jti: str, expires_at: float) -> None:
    """Deny one token until it expires."""
    ttl = int((expires_at - time.time() + float(conf.JWT["LEEWAY"])) * 1000)
    if ttl > 0:
        _set(jti_mark(lineage, jti), FOREVER, ttl)


def revoke_family(lineage: str, sid: str) -> None:
    """Deny every access token issued in one refresh family."""
    _set(family_mark(lineage, sid), FOREVER, mark_ttl_ms())


def revoke_issued_before(lineages: Iterable[str], when: float | None = None) -> None:
    """Deny every token of these lineages issued up to now (a compromised client or user)."""
    # To the millisecond, rounded up: a token issued in the same millisecond is revoked too.
    moment = math.ceil((time.time() if when is None else when) * 1000) / 1000
    for lineage in sorted(set(lineages)):
        _set(lineage_mark(lineage), moment, mark_ttl_ms())


def revoke_user(user: Any) -> None:
    """Every token naming ``user``: those of their identity provider and those obtained with
    the API keys they own."""
    from apiauth.models import APIKey

    lineages = [user_lineage(user.pk)]
    owned = APIKey._default_manager.filter(owner_id=user.pk).values_list("lineage", flat=True)
    lineages += [str(lineage) for lineage in owned]
    revoke_issued_before(lineages)


def is_revoked(marks: tuple[str, ...], issued_at: float) -> bool:
    """Ask the store directly (outside a rate-limit decision). Raises
    :class:`BackendUnavailable` when it cannot answer."""
    return get_backend().revoked(marks, issued_at)
