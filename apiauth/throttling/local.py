"""Limits decided in this process while the store cannot decide them (failure mode ``"local"``).

Each process enforces its share of every limit: the capacity divided by
``RATELIMIT_LOCAL_PROCESSES`` (the processes that serve the API, all app servers together) and
the refill slowed by the same factor. A failover or an outage of Redis therefore degrades the
limits to about what they were, instead of opening an unlimited window; the shares are not
exact (a client's requests may reach some processes more than others), which is the price of
deciding without a shared store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from functools import lru_cache

from apiauth.conf import conf
from apiauth.store.local import LocalStore
from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit

store = LocalStore()


@lru_cache(maxsize=1024)
def share(limit: Limit, processes: int, cost: int) -> Limit:
    """This process's share of ``limit``; never below one request of ``cost``."""
    if processes <= 1:
        return limit
    capacity = max(limit.capacity // processes, min(cost, limit.capacity), 1)
    if limit.kind == "bucket":
        # The whole limit refills ``capacity`` units per ``capacity * interval``; a share
        # refills its own capacity in the same time.
        span = limit.capacity * limit.interval_us
        return dataclasses.replace(limit, capacity=capacity, interval_us=max(1, span // capacity))
    return dataclasses.replace(limit, capacity=capacity)


def decide(
    keys: Sequence[str], limits: Sequence[Limit], cost: int, *, debit: bool = True
) -> gcra.Decision:
    processes = max(1, conf.RATELIMIT_LOCAL_PROCESSES)
    shares = [share(limit, processes, cost) for limit in limits]
    return store.evaluate(keys, shares, cost, debit=debit)


def forget(tag: str) -> int:
    """Forget this process's share of one identity's limits (an operator's reset)."""
    return store.reset(tag)


def clear() -> None:
    """Forget every local decision (tests; once the store is back, its state rules)."""
    with store.lock:
        store.store.clear()
