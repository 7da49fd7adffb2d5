"""What every store offers, whatever holds the state: the errors, the breaker and the interface.

The store keeps everything apiauth decides per request (rate-limit buckets and quotas, the
credential cache's version tokens, token revocation marks, replay claims). Two implementations
follow :class:`Store`: :class:`~apiauth.store.redis.RedisStore` (one server, Sentinel or a
Cluster) and :class:`~apiauth.store.local.LocalStore` (this process only).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit

server_changed: list[Callable[[], object]] = []
"""Called when a process finds itself talking to another server than before (a failover, a
restart): what it confirmed against the old one must be confirmed again."""

recovered: list[Callable[[], object]] = []
"""Called when a process reaches the store again after it was unavailable: what it could not
write meanwhile can be written now."""


class StoreUnavailable(Exception):
    """The store could not decide: unreachable, failing over, breaker open, or an error."""


class StaleCredential(Exception):
    """The cached credential's version token has changed: re-read it before deciding."""


class TokenRevoked(Exception):
    """A revocation mark covers the token being checked (:mod:`apiauth.revocation`)."""


class ClaimTaken(Exception):
    """A check's :attr:`Check.claim` was made before: the request is a replay."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class MarksUnloaded(Exception):
    """The lineage's revocation marks are not in the store (never loaded, evicted, flushed,
    or written by a server that has since been replaced): load them from the database."""

    def __init__(self, lineage: str) -> None:
        super().__init__(lineage)
        self.lineage = lineage


@dataclass(frozen=True, slots=True)
class Check:
    """What a request must confirm in the store, in the same round trip as its limits."""

    key: str
    """The lineage's version token key (:mod:`apiauth.cache`)."""
    token: str
    """The token a worker's copy was read under; ``""`` when there is no copy to confirm."""
    marks: tuple[str, ...] = ()
    """Fields of the lineage's revocation hash that must not cover ``issued_at`` (a JWT's)."""
    issued_at: float = 0
    revocations: str = ""
    """The lineage's revocation hash (:func:`apiauth.store.keys.revocations_key`)."""
    lineage: str = ""
    """Whose marks these are: loaded from the database when the store has none."""
    claim: str = ""
    """A key (in the lineage's slot) to create if absent, once the version and the marks are
    confirmed and before the limits are decided: a signed write's replay claim, in the same
    round trip. :class:`ClaimTaken` when it exists already."""
    claim_ttl_ms: int = 0


@dataclass(slots=True, eq=False)
class Call:
    """One decision as the store receives it: the limits' keys and figures, the cost, and what
    to confirm. A worker's copy of a credential makes the same call on each of its requests
    (per view scope and cost), so the throttle keeps it, and the store may keep its own
    encoding of it in :attr:`encoded` (:meth:`Store.decide`)."""

    keys: tuple[str, ...]
    """``keys[i]`` holds ``limits[i]``'s state."""
    limits: tuple[Limit, ...]
    cost: int
    debit: bool = True
    check: Check | None = None
    encoded: Any = None
    """The store's own form of the call, made on its first use; ``None`` until then."""


class MarkResult:
    """What :meth:`Store.mark` did with a mark."""

    WRITTEN = "written"
    """Added to the lineage's loaded marks."""
    UNLOADED = "unloaded"
    """The lineage's marks are not loaded: the next check loads them, the new row included."""


class CircuitBreaker:
    """After a failure, skip the store for ``cooldown`` seconds instead of paying a timeout on
    every request; the first call after that tries again (and closes the breaker on success)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.open_until = 0.0
        self.failures = 0

    @property
    def is_open(self) -> bool:
        return self.clock() < self.open_until

    def record_failure(self, cooldown: float) -> None:
        self.failures += 1
        self.open_until = self.clock() + cooldown

    def record_success(self) -> None:
        self.open_until = 0.0


class Store(Protocol):
    """The operations apiauth needs; each raises :class:`StoreUnavailable` when it cannot."""

    breaker: CircuitBreaker

    def evaluate(
        self,
        keys: Sequence[str],
        limits: Sequence[Limit],
        cost: int,
        *,
        debit: bool = True,
        check: Check | None = None,
    ) -> gcra.Decision:
        """Decide ``limits`` (and debit them when all admit). With a ``check``: only if its
        version token still stands (else :class:`StaleCredential`), its lineage's marks are
        loaded (else :class:`MarksUnloaded`) and none covers it (else :class:`TokenRevoked`);
        in those cases no bucket is touched."""
        ...

    def decide(self, call: Call) -> gcra.Decision:
        """:meth:`evaluate` of a :class:`Call`, which the store may encode once and keep."""
        ...

    def version(self, key: str, token: str) -> str:
        """The version token at ``key``, set to ``token`` if there is none."""
        ...

    def claim(self, key: str, ttl_ms: int) -> bool:
        """Whether this call was the first to claim ``key`` in the last ``ttl_ms``."""
        ...

    def delete(self, keys: Sequence[str]) -> int:
        """Delete these keys (any slots); the number deleted."""
        ...

    def reset(self, tag: str) -> int:
        """Delete the rate-limit keys of one identity (never its marks or version token)."""
        ...

    def mark(self, key: str, field: str, value: float, ttl_ms: int) -> str:
        """Add a revocation mark to a lineage's loaded marks (:class:`MarkResult`)."""
        ...

    def revoked(self, key: str, fields: Sequence[str], issued_at: float) -> bool | None:
        """Whether a mark covers a token issued at ``issued_at``; ``None`` when the lineage's
        marks are not loaded."""
        ...

    def load_marks(self, key: str, load: Callable[[], Mapping[str, float]], ttl_ms: int) -> bool:
        """Replace a lineage's marks with ``load()`` (field → value), read from the database
        after this call has fenced off concurrent writers, kept ``ttl_ms``. ``False`` when a
        revocation raced the load (nothing written: the next check loads again)."""
        ...
