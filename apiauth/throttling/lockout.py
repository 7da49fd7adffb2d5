"""Brute-force protection: failed authentications per client address.

DRF runs throttles after authentication, so this limiter is called by the authentication
classes themselves. Each failure debits the address's bucket in the shared store (IPv6 clients
by /64, clients of unknown address as one shared identity). Once it is empty, the address is
*locked* until a token is back. What a lock does depends on ``APIAUTH["FAILED_AUTH_LOCKOUT"]``:

``"failures"`` (default)
    Failures from a locked address are answered 429 instead of 401, but **valid credentials
    are still honoured**: an attacker behind a customer's NAT cannot lock the customer out.
    Every worker answers alike, because the answer depends only on the credential and the
    shared bucket. The price: a locked address may keep trying, and each well-formed guess
    costs one indexed lookup (what a request with a valid key costs anyway); malformed and
    checksum-failing keys never reach the database, and a worker that has seen the lock
    answers failures without a round trip. With ~256-bit secrets, guessing stays hopeless.

``"all"``
    Every credentialed request from a locked address is refused with 429 before any lookup,
    valid or not, on every worker: each credentialed request first reads the lock from the
    store (one extra round trip per request, skipped while this worker already knows the lock).

Failures during a lock are not logged one by one: a summary line counts them, at most one a
minute per address and worker while they go on (the lockout itself is logged when it starts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from apiauth.conf import conf
from apiauth.net import client_key
from apiauth.throttling import gcra
from apiauth.throttling.limiter import Outcome, RateLimitUnavailable, decide
from apiauth.throttling.rates import Limit, parse_limits

SUMMARY_INTERVAL = 60.0


@dataclass
class Lock:
    until: float
    """Monotonic time at which the bucket has a token again."""
    decision: gcra.Decision
    """The store's latest refusal, for the rate-limit headers."""
    seen_at: float
    suppressed: int = 0
    """Failures answered during the lock and not yet written to the log."""
    summarised_at: float = 0.0


class FailedAuthLimiter:
    """The failed-authentication bucket of each address, and the locks this worker has seen."""

    max_entries = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.locked: dict[str, Lock] = {}
        self.lock = threading.Lock()

    def limits(self) -> tuple[tuple[Limit, ...], list[str]]:
        spec = conf.FAILED_AUTH_LIMITS
        limits = parse_limits(spec, name="auth-failures") if spec else ()
        return limits, [f"f:{limit.name}" for limit in limits]

    def locked_for(self, client_ip: str | None) -> float | None:
        """Seconds left on a lock this worker knows of, or ``None`` (no round trip)."""
        entry = self.locked.get(client_key(client_ip))
        if entry is None:
            return None
        left = entry.until - self.clock()
        return left if left > 0 else None

    def is_locked(self, client_ip: str | None) -> float | None:
        """Seconds left on the address's lock, asking the store when this worker does not know.

        For the strict ``"all"`` mode: one round trip, without debiting.
        """
        known = self.locked_for(client_ip)
        if known is not None:
            return known
        limits, names = self.limits()
        if not limits:
            return None
        try:
            outcome = decide(f"f{client_key(client_ip)}", limits, names, 1, debit=False)
        except RateLimitUnavailable:
            return None
        decision = outcome.decision
        if decision is None or decision.allowed:
            return None
        self._remember(client_key(client_ip), decision)
        return decision.retry_after_us / 1_000_000

    def record_failure(self, client_ip: str | None) -> tuple[Outcome, bool]:
        """Debit one failure. Returns the outcome and whether this call started a lock here."""
        limits, names = self.limits()
        if not limits:
            return Outcome(None), False
        key = client_key(client_ip)
        try:
            outcome = decide(f"f{key}", limits, names, 1)
        except RateLimitUnavailable:
            # Fail-closed or not, a failed login stays a 401 while the store is down.
            return Outcome(None, failed_open=True), False
        decision = outcome.decision
        if decision is None or decision.allowed:
            return outcome, False
        return outcome, self._remember(key, decision)

    def known_decision(self, client_ip: str | None) -> gcra.Decision | None:
        """The refusal behind a lock this worker knows, aged to now (for the headers)."""
        entry = self.locked.get(client_key(client_ip))
        if entry is None:
            return None
        elapsed = int((self.clock() - entry.seen_at) * 1_000_000)
        return gcra.Decision(
            False,
            tuple(
                gcra.LimitState(
                    s.limit, s.remaining, max(0, s.reset_us - elapsed), max(0, s.retry_us - elapsed)
                )
                for s in entry.decision.states
            ),
        )

    def _remember(self, key: str, decision: gcra.Decision) -> bool:
        seconds = decision.retry_after_us / 1_000_000
        now = self.clock()
        with self.lock:
            entry = self.locked.get(key)
            started = entry is None or entry.until <= now
            if started and entry is None and len(self.locked) >= self.max_entries:
                self.locked = {k: v for k, v in self.locked.items() if v.until > now}
                if len(self.locked) >= self.max_entries:
                    # Full of live locks: the store keeps deciding for this address (one
                    # round trip per failure) rather than this worker growing without bound.
                    return True
            if started:
                # A lock that ends and starts again keeps its unlogged count and its summary
                # clock, so a long attack is summarised once a minute whatever the lock length.
                self.locked[key] = Lock(
                    now + seconds,
                    decision=decision,
                    seen_at=now,
                    suppressed=entry.suppressed if entry is not None else 0,
                    summarised_at=entry.summarised_at if entry is not None else now,
                )
            else:
                assert entry is not None
                entry.until = max(entry.until, now + seconds)
                entry.decision, entry.seen_at = decision, now
            return started

    def count_suppressed(self, client_ip: str | None) -> int | None:
        """Count a failure answered during a known lock; returns the count to log now, if due."""
        now = self.clock()
        with self.lock:
            entry = self.locked.get(client_key(client_ip))
            if entry is None:
                return None
            entry.suppressed += 1
            if now - entry.summarised_at < SUMMARY_INTERVAL:
                return None
            count, entry.suppressed, entry.summarised_at = entry.suppressed, 0, now
            return count

    def clear(self) -> None:
        with self.lock:
            self.locked.clear()


limiter = FailedAuthLimiter()
