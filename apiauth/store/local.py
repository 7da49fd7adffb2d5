"""The store in this process: the same maths and marks, for development without Redis.

Not shared between processes, so N workers admit up to N times the limit (system check
``apiauth.W005``). Revocation marks are never kept here, as credentials are never cached
without a shared store: a revocation made in another process could not reach this one, so
every check of a token asks the database (:mod:`apiauth.revocation`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from apiauth.store import keys as names
from apiauth.store.base import (
    Call,
    Check,
    CircuitBreaker,
    ClaimTaken,
    MarkResult,
    MarksUnloaded,
)
from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit

EPOCH = "local"


class LocalStore:
    """Buckets, claims and marks in dicts under one lock, bounded in size."""

    max_entries = 100_000

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.clock = clock or (lambda: time.time_ns() // 1000)
        self.breaker = CircuitBreaker()  # never opens: nothing here can be unreachable
        self.lock = threading.Lock()
        self.store: dict[str, tuple[gcra.Value, int]] = {}  # key → (value, expires at µs)
        self.claims: dict[str, int] = {}  # key → expires at µs

    def evaluate(
        self,
        keys: Sequence[str],
        limits: Sequence[Limit],
        cost: int,
        *,
        debit: bool = True,
        check: Check | None = None,
    ) -> gcra.Decision:
        # Credentials are never cached without Redis (apiauth.cache), nor marks: a check here
        # carries marks only, and the database answers them.
        if check is not None and check.revocations and check.marks:
            raise MarksUnloaded(check.lineage)
        if check is not None and check.claim and not self.claim(check.claim, check.claim_ttl_ms):
            raise ClaimTaken(check.claim)
        with self.lock:
            now = self.clock()
            current = {
                key: entry[0]
                for key in keys
                if (entry := self.store.get(key)) is not None and entry[1] > now
            }
            decision, updates = gcra.evaluate(current, keys, limits, cost, now, debit=debit)
            for key, limit in zip(keys, limits, strict=True):
                if key in updates:
                    expires = now + gcra.expiry_ms(limit, updates[key], now) * 1000
                    self.store[key] = (updates[key], expires)
            if len(self.store) > self.max_entries:
                self.store = {k: v for k, v in self.store.items() if v[1] > now}
            return decision

    def decide(self, call: Call) -> gcra.Decision:
        return self.evaluate(call.keys, call.limits, call.cost, debit=call.debit, check=call.check)

    def version(self, key: str, token: str) -> str:
        return token  # copies are never kept without a shared store

    def claim(self, key: str, ttl_ms: int) -> bool:
        with self.lock:
            now = self.clock()
            held = self.claims.get(key)
            if held is not None and held > now:
                return False
            if len(self.claims) > self.max_entries:
                self.claims = {k: v for k, v in self.claims.items() if v > now}
            self.claims[key] = now + ttl_ms * 1000
            return True

    def delete(self, keys: Sequence[str]) -> int:
        with self.lock:
            return sum(1 for key in keys if self.store.pop(key, None) is not None)

    def reset(self, tag: str) -> int:
        with self.lock:
            doomed = [
                key
                for key in self.store
                if key.startswith(tag) and names.is_limit_name(key[len(tag) :].removeprefix(":"))
            ]
            for key in doomed:
                del self.store[key]
            return len(doomed)

    def mark(self, key: str, field: str, value: float, ttl_ms: int) -> str:
        return MarkResult.UNLOADED  # the database holds it; nothing here to update

    def revoked(self, key: str, fields: Sequence[str], issued_at: float) -> bool | None:
        return None  # never loaded: ask the database

    def load_marks(self, key: str, load: Callable[[], Mapping[str, float]], ttl_ms: int) -> bool:
        return False  # nothing is kept: the caller asks the database
