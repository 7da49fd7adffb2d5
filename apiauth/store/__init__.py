"""The shared store: everything apiauth decides per request, in Redis (or this process).

Rate-limit buckets and quotas, the credential cache's version tokens, token revocation marks
and replay claims all live here, under the names of :mod:`apiauth.store.keys`. The database
stays the source of truth of every revocation: the marks here are a cache of its rows that a
failover, a restart, a flush or eviction may lose, and that is loaded again when they are gone.
"""

from __future__ import annotations

import threading

from django.core.cache import caches

from apiauth.conf import conf
from apiauth.store.base import (
    Call,
    Check,
    CircuitBreaker,
    ClaimTaken,
    MarkResult,
    MarksUnloaded,
    StaleCredential,
    Store,
    StoreUnavailable,
    TokenRevoked,
)
from apiauth.store.connections import StoreMisconfigured
from apiauth.store.local import LocalStore
from apiauth.store.redis import RedisStore

__all__ = [
    "Call",
    "Check",
    "CircuitBreaker",
    "LocalStore",
    "MarkResult",
    "ClaimTaken",
    "MarksUnloaded",
    "RedisStore",
    "StaleCredential",
    "Store",
    "StoreMisconfigured",
    "StoreUnavailable",
    "TokenRevoked",
    "get_store",
    "reset_stores",
    "uses_redis",
]

_stores: dict[tuple[str, str, str], Store] = {}
_lock = threading.Lock()


def uses_redis(alias: str) -> bool:
    """Whether the cache ``alias`` is a django-redis cache (whose client the store can use)."""
    backend = str(caches[alias].__class__.__module__)
    return backend.startswith("django_redis")


def _redis_from_cache(alias: str) -> RedisStore:
    def factory() -> object:
        from django_redis import get_redis_connection

        return get_redis_connection(alias)

    return RedisStore(factory=factory)


def _redis_from_url(url: str) -> RedisStore:
    from apiauth.store.clients import build_client

    options = conf.REDIS_OPTIONS
    return RedisStore(factory=lambda: build_client(url, options))


def get_store() -> Store:
    """The configured store, one instance per configuration and process: remembered until
    ``APIAUTH`` changes (every request asks)."""
    return conf.derive(_configured_store)


def _configured_store() -> Store:
    setting, alias, url = conf.RATELIMIT_BACKEND, conf.RATELIMIT_CACHE, conf.REDIS_URL or ""
    found = _stores.get((setting, alias, url))
    if found is not None:
        return found
    kind = setting
    if kind == "auto":
        kind = "redis" if url or uses_redis(alias) else "local"
    with _lock:
        found = _stores.get((setting, alias, url))
        if found is None:
            if kind != "redis":
                found = LocalStore()
            elif url:
                found = _redis_from_url(url)
            else:
                found = _redis_from_cache(alias)
            _stores[(setting, alias, url)] = found
        return found


def reset_stores() -> None:
    """Forget store instances (tests; after changing the store's settings)."""
    with _lock:
        _stores.clear()
        conf.derived.pop(_configured_store, None)
