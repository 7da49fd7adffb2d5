"""Former home of the store, kept so that imports of its names keep working.

The store now lives in :mod:`apiauth.store`.
"""

from __future__ import annotations

from apiauth.store import (
    CircuitBreaker,
    LocalStore,
    RedisStore,
    StaleCredential,
    StoreUnavailable,
    TokenRevoked,
    get_store,
    reset_stores,
    uses_redis,
)

BackendUnavailable = StoreUnavailable
RedisBackend = RedisStore
LocalBackend = LocalStore
get_backend = get_store
reset_backends = reset_stores

__all__ = [
    "BackendUnavailable",
    "CircuitBreaker",
    "LocalBackend",
    "RedisBackend",
    "StaleCredential",
    "TokenRevoked",
    "get_backend",
    "reset_backends",
    "uses_redis",
]
