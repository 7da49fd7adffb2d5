"""Credentials without SQL: an in-process copy per worker, validated in Redis on every request.

Each worker keeps the credentials it has seen (the model instance with its owner) in a bounded
LRU keyed by what the client presents (an API key's digest). Redis holds, per credential
lineage, one **version token**: a random value, nothing about the credential. A copy is stored
with the token that was current *before* its row was read, and a request served from the copy
is valid only if Redis still holds that token. The check rides in the rate limiter's script, so
a request makes one Redis round trip and no SQL query (see docs/performance.md).

Invariants:

1. **Token before row.** A fill reads (or creates) the token, then reads the row. A copy is
   therefore never older than its token.
2. **Invalidate after change.** Any change to a credential or its owner deletes the lineage's
   token after it commits (and once before, for the caller's own transaction).
3. Tokens are random, so a deleted token never comes back: a copy read before a change carries a
   token that the change destroyed, and fails its next check. A fill racing a revocation
   cannot resurrect the credential; ``tests/test_cache_race.py`` runs that race.
4. **No check, no copy.** When Redis cannot be asked (down, breaker open, or no Redis backend at
   all), the credential comes from the database on every request.

Copies also expire after ``CREDENTIAL_CACHE_TTL`` seconds: that bounds changes no signal
announces (``QuerySet.update()``, raw SQL, a change of the owner's groups). Call
:func:`invalidate` after such changes to make them immediate.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import transaction

from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.models import APIKey, Application, HMACCredential
from apiauth.store import Check, RedisStore, StoreUnavailable, get_store
from apiauth.store.keys import VERSION as VERSION_NAME
from apiauth.store.keys import version_key

logger = logging.getLogger("apiauth.cache")

T = TypeVar("T")

__all__ = [
    "Check",
    "CredentialCache",
    "Entry",
    "VERSION_NAME",
    "application_cache",
    "client_cache",
    "hmac_cache",
    "invalidate",
    "key_cache",
    "version_key",
]


@dataclass(slots=True)
class Entry(Generic[T]):
    obj: T
    check: Check | None
    expires: float
    credential: Credential | None = None
    """The request's :class:`~apiauth.credentials.Credential`, built once per copy; a request
    gets it with its own copy of the owner (:func:`~apiauth.credentials.with_owner`)."""


def redis_backend() -> RedisStore | None:
    """The store to check tokens in, or ``None`` when copies cannot be checked."""
    if conf.CREDENTIAL_CACHE_TTL <= 0:
        return None
    backend = get_store()
    if not isinstance(backend, RedisStore):
        return None
    if backend.breaker.is_open:
        # Deletions may have failed while the store was away: start again from the database.
        clear_all()
        return None
    return backend


class CredentialCache(Generic[T]):
    """Copies of one credential model, looked up by a presented value (a digest).

    ``lookup(value)`` reads the row (one query); ``lineage(obj)`` names its version token.
    """

    def __init__(
        self,
        lookup: Callable[[str], T | None],
        lineage: Callable[[T], str],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.lineage = lineage
        self.clock = clock
        self.lock = threading.Lock()
        self.entries: OrderedDict[str, Entry[T]] = OrderedDict()

    def get(self, value: str) -> Entry[T] | None:
        """A copy to serve from, a fresh fill, or ``None`` for an unknown value."""
        entry = self.held(value)
        return entry if entry is not None else self.fill(value)

    def held(self, value: str) -> Entry[T] | None:
        """This worker's copy to serve from, if it holds a current one (no fill)."""
        entry = self.entries.get(value)
        if entry is not None and entry.expires > self.clock():  # stored copies carry a check
            return entry
        return None

    def fill(self, value: str) -> Entry[T] | None:
        """Read the row after the token (invariant 1) and keep the pair when both were read."""
        backend = redis_backend()
        if backend is None:
            obj = self.lookup(value)
            return None if obj is None else Entry(obj, None, 0.0)
        # An expired copy still names its token: the refill then needs one query, not two.
        old = self.entries.get(value)
        key = old.check.key if old is not None and old.check is not None else None
        first = None
        if key is None:
            first = self.lookup(value)
            if first is None:
                return None
            key = version_key(self.lineage(first))
        try:
            token = backend.version(key, secrets.token_hex(8))
        except StoreUnavailable:
            # Served from the database, never kept: the row just read will do.
            obj = first if first is not None else self.lookup(value)
            return None if obj is None else Entry(obj, None, 0.0)
        obj = self.lookup(value)
        if obj is None:
            self.forget(value)
            return None
        entry = Entry(obj, Check(key, token), self.clock() + conf.CREDENTIAL_CACHE_TTL)
        self.store(value, entry)
        return entry

    def store(self, value: str, entry: Entry[T]) -> None:
        with self.lock:
            self.entries[value] = entry
            self.entries.move_to_end(value)
            while len(self.entries) > conf.CREDENTIAL_CACHE_SIZE:
                self.entries.popitem(last=False)

    def forget(self, value: str) -> None:
        with self.lock:
            self.entries.pop(value, None)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


caches: list[CredentialCache[Any]] = []


def register(cache: CredentialCache[T]) -> CredentialCache[T]:
    caches.append(cache)
    return cache


def clear_all() -> None:
    """Drop every copy in this process (tests; after an outage of the token store)."""
    for cache in caches:
        cache.clear()


def settings_changed(setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: a copy's request credential was built under the old
    ``APIAUTH`` (its default plan, say)."""
    if setting == "APIAUTH":
        clear_all()


def invalidate(lineages: Iterable[str], using: str | None = None) -> None:
    """Make a change to these lineages' credentials take effect on every worker's next request.

    Deletes their tokens now and again once the current transaction commits (a fill between
    the two would read the old row with a token of its own; the second deletion destroys it).
    Called by the models' signal handlers; call it after ``QuerySet.update()`` or raw SQL.
    """
    keys = sorted({version_key(lineage) for lineage in lineages})
    if not keys:
        return
    _delete(keys)
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(lambda: _delete(keys), using=using)


def _delete(keys: list[str]) -> None:
    backend = get_store()
    if not isinstance(backend, RedisStore):
        return
    try:
        backend.delete(keys)
    except StoreUnavailable as exc:
        # The database changed, the tokens did not: copies may be honoured until they expire.
        logger.error(
            "could not invalidate %d cached credential(s); copies expire within %ss: %s",
            len(keys),
            conf.CREDENTIAL_CACHE_TTL,
            exc,
        )


def credential_changed(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` of a credential: its lineage's copies are out of date."""
    if not created:
        invalidate([instance.lineage_id], using=kwargs.get("using"))


def lineages_changed(
    sender: Any, lineages: Iterable[str], using: str | None = None, **kwargs: Any
) -> None:
    """``signals.credentials_changed`` receiver (a revocation)."""
    invalidate(lineages, using=using)


def owner_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """``post_save`` / ``post_delete`` of a user: copies of the credentials they own carry the
    user (``is_active`` and everything a view reads from ``request.user``)."""
    if kwargs.get("created"):
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # every login saves this; nothing a credential depends on
    lineages: list[str] = []
    for model in credential_models:
        owned = model._default_manager.filter(owner_id=instance.pk)
        lineages += [str(lineage) for lineage in owned.values_list("lineage", flat=True)]
    invalidate(lineages, using=kwargs.get("using"))


credential_models: list[Any] = []
"""The credential models whose copies this module keeps (registered in
``AppConfig.ready()``, so the cache never imports the models)."""


key_cache: CredentialCache[APIKey] = register(
    CredentialCache(APIKey.objects.get_by_digest, lambda key: key.lineage_id)
)
"""Copies of the API keys this worker has seen, by digest."""

client_cache: CredentialCache[APIKey] = register(
    CredentialCache(APIKey.objects.get_by_public_id, lambda key: key.lineage_id)
)
"""Copies of the API keys that obtained the tokens this worker has seen, by public id."""

hmac_cache: CredentialCache[HMACCredential] = register(
    CredentialCache(HMACCredential.objects.get_by_access_key_id, lambda c: c.lineage_id)
)
"""Copies of the HMAC credentials this worker has seen, secrets decrypted, by access key id."""

application_cache: CredentialCache[Application] = register(
    CredentialCache(Application.objects.get_by_client_id, lambda app: app.lineage_id)
)
"""Copies of the applications whose people's tokens this worker has seen, by client id."""
