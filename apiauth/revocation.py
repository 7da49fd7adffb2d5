"""Revoking JWTs before they expire: rows in the database, marks in the store.

A token is signed and self-contained, so revoking one means remembering, until it would have
expired anyway, that it must be refused. Every revocation is a time: a token **issued at or
before** it is revoked. A denied ``jti`` or a revoked refresh family holds a time beyond any
token's ``iat``; a "revoked before" mark for a client (an API key's lineage) or a user holds
the moment of revocation, so one write cuts off every token issued until then.

The database is the source of truth: each revocation is a :class:`~apiauth.models.Revocation`
row, written first. The store keeps a copy of a lineage's live rows as one hash under the
lineage's hash tag, which the throttle's script checks with the buckets in the request's one
round trip. The hash records which server loaded it (that server's ``run_id`` and replication
id, which every restart and promotion change); when it is missing (evicted, flushed, a restart)
or was loaded by another server (a copy replicated from a primary that a failover replaced,
which may lack its last writes), the next request loads the lineage's rows again: one query per
lineage, never one per request. A load fences the hash first, and a revocation that commits
during the load spoils the fence, so a load can never write marks older than the database.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import logging
import math
import time
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.db import router, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone

from apiauth.conf import conf
from apiauth.store import Check, MarkResult, StoreUnavailable, TokenRevoked, get_store
from apiauth.store.keys import revocations_key

logger = logging.getLogger("apiauth.revocation")

FOREVER = float(2**53)
"""A mark later than any token's ``iat``: revoked, whenever issued."""

BEFORE = "b"
"""The field of a lineage's "revoked before" moment."""


def user_lineage(user_pk: Any) -> str:
    """The lineage of tokens that name a user and no API key (external identity providers)."""
    return f"user-{user_pk}"


def subject_lineage(issuer: str, subject: str) -> str:
    """The lineage of an external issuer's machine subject (an issuer without ``USER_FIELD``):
    its rate limits, and the marks that revoke its tokens."""
    digest = hashlib.sha256(f"{issuer}\0{subject}".encode()).hexdigest()
    return f"sub-{digest[:24]}"


def jti_mark(jti: str) -> str:
    # Hashed: a jti is the issuer's text, of any length and alphabet.
    return "j:" + hashlib.sha256(jti.encode()).hexdigest()[:32]


def family_mark(sid: str) -> str:
    return "s:" + hashlib.sha256(sid.encode()).hexdigest()[:32]


def person_mark(user_pk: Any) -> str:
    """The mark that ends every token of one person in an application's lineage (signing out
    of the application, or everywhere)."""
    return f"u:{user_pk}"


def marks_for(claims: dict[str, Any], *, person: bool = False) -> tuple[str, ...]:
    """The marks that may revoke a token with these claims; a ``person``'s token (``sub`` a
    user, through an application) also by the person's mark."""
    jti, sid = claims.get("jti"), claims.get("sid")
    marks = _marks(jti if isinstance(jti, str) else None, sid if isinstance(sid, str) else None)
    return (*marks, person_mark(claims["sub"])) if person else marks


@lru_cache(maxsize=4096)  # a token is presented again and again: hash its names once
def _marks(jti: str | None, sid: str | None) -> tuple[str, ...]:
    marks = [BEFORE]
    if jti is not None:
        marks.append(jti_mark(jti))
    if sid is not None:
        marks.append(family_mark(sid))
    return tuple(marks)


def check_for(
    lineage: str,
    claims: dict[str, Any],
    issued_at: float,
    key: str,
    token: str,
    *,
    person: bool = False,
) -> Check:
    """What the throttle's round trip confirms for a token of ``lineage``: the version ``token``
    at ``key`` (``""`` for none) and that no mark covers ``issued_at``."""
    return Check(
        key=key,
        token=token,
        marks=marks_for(claims, person=person),
        issued_at=issued_at,
        revocations=revocations_key(lineage),
        lineage=lineage,
    )


def mark_ttl_ms() -> int:
    """How long a mark can matter: the longest a token may live (the verifier refuses longer)
    plus the leeway."""
    settings = conf.jwt
    return int((settings.max_token_lifetime + settings.leeway) * 1000)


# -- revoking ----------------------------------------------------------------------------


def revoke_jti(lineage: str, jti: str, expires_at: float) -> None:
    """Deny one token until it expires."""
    until = expires_at + conf.jwt.leeway
    if until > time.time():
        record(lineage, jti_mark(jti), FOREVER, until)


def revoke_family(lineage: str, sid: str) -> None:
    """Deny every access token issued in one refresh family."""
    record(lineage, family_mark(sid), FOREVER, time.time() + mark_ttl_ms() / 1000)


def revoke_issued_before(lineages: Iterable[str], when: float | None = None) -> None:
    """Deny every token of these lineages issued up to now (a compromised client or user)."""
    # To the millisecond, rounded up: a token issued in the same millisecond is revoked too.
    moment = math.ceil((time.time() if when is None else when) * 1000) / 1000
    for lineage in sorted(set(lineages)):
        record(lineage, BEFORE, moment, moment + mark_ttl_ms() / 1000)


def revoke_issued_before_named(lineage: str, name: str, when: float | None = None) -> None:
    """Deny the tokens of ``lineage`` that carry the mark ``name`` (a person's, in an
    application's lineage) issued up to now."""
    moment = math.ceil((time.time() if when is None else when) * 1000) / 1000
    record(lineage, name, moment, moment + mark_ttl_ms() / 1000)


def revoke_user(user: Any) -> None:
    """Every token naming ``user``: those of their identity provider and those obtained with
    the API keys they own."""
    from apiauth.models import APIKey

    lineages = [user_lineage(user.pk)]
    owned = APIKey._default_manager.filter(owner_id=user.pk).values_list("lineage", flat=True)
    lineages += [str(lineage) for lineage in owned]
    revoke_issued_before(lineages)


def record(lineage: str, name: str, value: float, until: float) -> None:
    """Write a revocation: its row first (a later time wins), then its mark. Raises
    :class:`StoreUnavailable` when the mark could not be written: the revocation stands in the
    database, and the store is brought up to date when it is back (:func:`publish_pending`)."""
    from apiauth.models import Revocation

    expires_at = datetime.datetime.fromtimestamp(until, tz=datetime.UTC)
    using = router.db_for_write(Revocation)
    with transaction.atomic(using=using):
        row, created = Revocation.objects.using(using).get_or_create(
            lineage=lineage, name=name, defaults={"value": value, "expires_at": expires_at}
        )
        if not created:  # revoked again: the later time and the longer life win
            Revocation.objects.using(using).filter(pk=row.pk).update(
                value=Greatest(F("value"), value),
                expires_at=Greatest(F("expires_at"), expires_at),
                published=False,
            )
    # Now, for this worker's next request, and again once committed: a load that read the
    # database before the commit may have replaced the first (as the cache invalidates twice).
    # Only a publication after the commit counts as done.
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(lambda: _publish_quietly(lineage, name, using), using=using)
        publish(lineage, name, using, committed=False)
    else:
        publish(lineage, name, using)


def publish(lineage: str, name: str, using: str | None = None, *, committed: bool = True) -> None:
    """Copy one row to the store (raises :class:`StoreUnavailable`); a ``committed`` row is
    then recorded as published (:func:`publish_pending` skips it)."""
    from apiauth.models import Revocation

    row = Revocation.objects.using(using).filter(lineage=lineage, name=name).first()
    if row is None:
        return
    ttl_ms = max(1, int((row.expires_at.timestamp() - time.time()) * 1000))
    result = get_store().mark(revocations_key(lineage), name, row.value, max(ttl_ms, mark_ttl_ms()))
    # Written, or not loaded (the next check loads it with this row): the store is current.
    assert result in (MarkResult.WRITTEN, MarkResult.UNLOADED)
    if committed:
        Revocation.objects.using(using).filter(pk=row.pk, value=row.value).update(published=True)


def _publish_quietly(lineage: str, name: str, using: str | None) -> None:
    try:
        publish(lineage, name, using)
    except StoreUnavailable as exc:
        logger.error(
            "revocation of %s saved; its mark will be written when the store is back: %s",
            lineage,
            exc,
        )


def publish_pending() -> int:
    """Write the marks of revocations the store missed while it was unavailable: called when
    a worker finds the store back, and by ``manage.py apiauth_publishrevocations`` (for a
    process that revoked and ended during an outage). Returns how many were written."""
    from apiauth.models import Revocation

    using = router.db_for_write(Revocation)
    pending = Revocation.objects.using(using).filter(published=False, expires_at__gt=timezone.now())
    done = 0
    for lineage, name in pending.values_list("lineage", "name")[:10_000]:
        publish(lineage, name, using)
        done += 1
    return done


# -- checking ----------------------------------------------------------------------------


def load(lineage: str) -> None:
    """Copy a lineage's live rows to the store (after its marks were found missing)."""
    from apiauth.models import Revocation

    def read() -> dict[str, float]:
        # From the primary: a replica that lags would load marks older than the database.
        rows = Revocation.objects.using(router.db_for_write(Revocation)).filter(
            lineage=lineage, expires_at__gt=timezone.now()
        )
        return dict(rows.values_list("name", "value"))

    # False when a revocation raced the load, or the store keeps no marks: the caller asks the
    # database either way.
    get_store().load_marks(revocations_key(lineage), read, mark_ttl_ms())


def revoked_in_database(lineage: str, marks: Iterable[str], issued_at: float) -> bool:
    """The source of truth's answer (one query, to the primary)."""
    from apiauth.models import Revocation

    return (
        Revocation.objects.using(router.db_for_write(Revocation))
        .filter(
            lineage=lineage,
            name__in=list(marks),
            value__gte=issued_at,
            expires_at__gt=timezone.now(),
        )
        .exists()
    )


def settle(check: Check) -> Check:
    """After the store said a check's marks are not loaded: load them, answer from the
    database, and return the check without marks for the decision to go on with. Raises
    :class:`TokenRevoked`."""
    # Store down: the decision that follows finds it so and says so.
    with contextlib.suppress(StoreUnavailable):
        load(check.lineage)
    if revoked_in_database(check.lineage, check.marks, check.issued_at):
        raise TokenRevoked(check.key)
    return dataclasses.replace(check, marks=(), revocations="")


def is_revoked(lineage: str, marks: tuple[str, ...], issued_at: float) -> bool:
    """Ask the store directly (outside a rate-limit decision), or the database when the store
    has not loaded the lineage's marks. Raises :class:`StoreUnavailable` when the store cannot
    answer."""
    found = get_store().revoked(revocations_key(lineage), marks, issued_at)
    if found is None:
        load(lineage)
        return revoked_in_database(lineage, marks, issued_at)
    return found
