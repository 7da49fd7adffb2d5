"""Token-bucket and quota maths, in Python; ``lua.py`` is the same algorithm for Redis.

A bucket is stored as one number, its *theoretical arrival time* (TAT, GCRA): the instant, in
µs, at which it would be full again. With capacity ``b`` and one token every ``I`` µs, the
tokens available at ``now`` are ``b - (max(TAT, now) - now) / I``; a request costing ``c`` is
admitted when that is at least ``c``, and moves TAT forward by ``c * I``. One integer per bucket
whatever the rate (O(1) memory), and the key can expire at TAT, when the bucket is full again.

A quota is a counter for the current fixed window (windows are aligned on the epoch of the
clock: a day quota resets at 00:00 UTC). Its value names the window it counts, ``(index,
used)``, so a counter that outlives its window by the key expiry's millisecond rounding is
read as zero, never as the new window's usage; the key expires when the window ends.

A request whose cost exceeds a limit's capacity can never be admitted; the throttle refuses it
before it gets here (:meth:`apiauth.throttling.TokenBucketThrottle.allow_request`), and the
maths alone never admits it either.

All limits of a request are decided together: if any refuses, none is debited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from apiauth.throttling.rates import Limit

Value: TypeAlias = int | tuple[int, int]
"""What a key holds: a bucket's TAT in µs, or a quota's ``(window index, used)``."""


# LimitState and Decision are made for each request: not frozen, since a frozen dataclass
# sets each field through object.__setattr__, which costs three times a plain assignment.


@dataclass(slots=True)
class LimitState:
    limit: Limit
    remaining: int
    reset_us: int
    """µs until the bucket is full again, or until the quota window ends."""
    retry_us: int
    """µs until this request would be admitted (0 when admitted)."""


@dataclass(slots=True)
class Decision:
    allowed: bool
    states: tuple[LimitState, ...]

    @property
    def retry_after_us(self) -> int:
        return max((s.retry_us for s in self.states), default=0)

    @property
    def blocking(self) -> LimitState | None:
        """The limit that refused, the one that frees latest."""
        refused = [s for s in self.states if s.retry_us > 0]
        return max(refused, key=lambda s: s.retry_us) if refused else None

    @property
    def tightest(self) -> LimitState | None:
        """What ``X-RateLimit-*`` describes: the refusing limit that frees latest, else the one
        with the fewest units left (then the one whole latest); the first of equals."""
        # One pass, no key functions: the headers ask this on every response.
        tightest = None
        for state in self.states:
            if tightest is None:
                tightest = state
            elif state.retry_us > 0 or tightest.retry_us > 0:
                if state.retry_us > tightest.retry_us:
                    tightest = state
            elif state.remaining < tightest.remaining or (
                state.remaining == tightest.remaining and state.reset_us > tightest.reset_us
            ):
                tightest = state
        return tightest


def evaluate(
    store: Mapping[str, Value],
    keys: Sequence[str],
    limits: Sequence[Limit],
    cost: int,
    now_us: int,
    *,
    debit: bool = True,
) -> tuple[Decision, dict[str, Value]]:
    """Decide a request against current values (``store``, key → value, expired keys absent).

    ``keys[i]`` holds ``limits[i]``'s state. Returns the decision and the values to write (none
    unless every limit admits and ``debit`` is true). The states report what is left after this
    request when it was debited, else what is left now.
    """
    before: list[LimitState] = []
    after: list[LimitState] = []
    updates: dict[str, Value] = {}
    for key, limit in zip(keys, limits, strict=True):
        if limit.kind == "bucket":
            span = limit.capacity * limit.interval_us
            stored = store.get(key)
            tat = max(stored if isinstance(stored, int) else now_us, now_us)
            new_tat = tat + cost * limit.interval_us
            retry = max(0, new_tat - span - now_us)
            updates[key] = new_tat
            before.append(
                LimitState(limit, (span - (tat - now_us)) // limit.interval_us, tat - now_us, retry)
            )
            after.append(
                LimitState(
                    limit, (span - (new_tat - now_us)) // limit.interval_us, new_tat - now_us, 0
                )
            )
        else:
            window_us = limit.window_s * 1_000_000
            reset = window_us - now_us % window_us
            index = now_us // window_us
            stored = store.get(key)
            used = stored[1] if isinstance(stored, tuple) and stored[0] == index else 0
            retry = 0 if used + cost <= limit.capacity else reset
            updates[key] = (index, used + cost)
            before.append(LimitState(limit, max(0, limit.capacity - used), reset, retry))
            after.append(LimitState(limit, limit.capacity - used - cost, reset, 0))
    allowed = all(state.retry_us == 0 for state in before)
    if allowed and debit:
        return Decision(True, tuple(after)), updates
    return Decision(allowed, tuple(before)), {}


def expiry_ms(limit: Limit, value: Value, now_us: int) -> int:
    """How long a key must live: buckets until full again, quotas until their window ends."""
    if isinstance(value, int):
        return max(1, -(-(value - now_us) // 1000))
    window_us = limit.window_s * 1_000_000
    return max(1, -(-(window_us - now_us % window_us) // 1000))
