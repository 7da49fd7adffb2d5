"""The names of everything apiauth keeps in the store.

Everything one credential lineage owns (its buckets and quotas, its cached copies' version
token, its revocation marks) carries the lineage as a Redis Cluster hash tag, so it lives in
one slot and one script may read and write all of it in a request's single round trip.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from apiauth.conf import conf

VERSION = "cred"
"""The version token's name next to the lineage's buckets (no limit can be called that)."""

REVOCATIONS = "revoked"
"""The lineage's revocation marks: one hash, so eviction takes all of them or none."""

EPOCH_FIELD = "e"
"""The field of a revocation hash that says which server's copy of the database it is."""


@lru_cache(maxsize=4096)  # asked on every request a credential makes
def lineage_identity(lineage: str) -> str:
    """The hash tag of everything a credential lineage owns in the store."""
    return f"k{lineage.replace('-', '')}"


def key_for(ident: str, name: str) -> str:
    return f"{conf.RATELIMIT_KEY_PREFIX}{{{ident}}}:{name}"


def keys_for(ident: str, names: Iterable[str]) -> list[str]:
    """:func:`key_for` of each name, the prefix read once."""
    tag = key_for(ident, "")
    return [tag + name for name in names]


def version_key(lineage: str) -> str:
    return key_for(lineage_identity(lineage), VERSION)


def revocations_key(lineage: str) -> str:
    return _revocations_key(conf.RATELIMIT_KEY_PREFIX, lineage)


@lru_cache(maxsize=4096)  # every JWT request names its lineage's hash: build the name once
def _revocations_key(prefix: str, lineage: str) -> str:
    return f"{prefix}{{{lineage_identity(lineage)}}}:{REVOCATIONS}"


def replay_key(lineage: str, access_key_id: str, signature: str) -> str:
    """A signed write's claim, in its credential's lineage slot: the throttle's one round trip
    makes it with the limits (:class:`~apiauth.store.base.Check`)."""
    return key_for(lineage_identity(lineage), f"replay:{access_key_id}:{signature}")


def is_limit_name(name: str) -> bool:
    """Whether a key name (after the hash tag) is a rate limit's: a plan's bucket, a quota
    (``q:``), a view scope's limit (``s:``) or a person's (``p:``). A reset deletes these and
    nothing else."""
    return name == "burst" or name.startswith(("q:", "s:", "p:"))
