"""Brute-force protection: failed authentications per client address.

DRF runs throttles after authentication, so this limiter is called by the authentication
classes themselves (:meth:`~apiauth.authentication.CredentialAuthentication.fail`). Each failure
debits the address's bucket in the shared store. Once it is empty:

* every further failure is answered 429, not 401, on every worker (the debit says so);
* the worker remembers the lock until the bucket has a token again and refuses that address
  before any key lookup, without a round trip.

So a locked-out client never learns whether a guess was right from an error code, and after the
first failure a worker sees from a locked address, no guess of it reaches the database until
the lock ends. The bound: a worker that has not yet seen a failure from the address evaluates
one attempt, so at most one evaluated attempt per worker process per refill interval.
Successful requests pay nothing for this (no round trip).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from apiauth.conf import conf
from apiauth.throttling.limiter import Outcome, RateLimitUnavailable, decide
from apiauth.throttling.rates import parse_limits


class FailedAuthLimiter:
    max_entries = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.locked: dict[str, float] = {}  # client address → monotonic time the lock ends
        self.lock = threading.Lock()

    def locked_for(self, client_ip: str | None) -> float | None:
        """Seconds left on this worker's knowledge of a lock, or ``None`` (no round trip)."""
        if client_ip is None:
            return None
        until = self.locked.get(client_ip)
        if until is None:
            return None
        left = until - self.clock()
        if left <= 0:
            with self.lock:
                self.locked.pop(client_ip, None)
            return None
        return left

    def record_failure(self, client_ip: str | None) -> tuple[Outcome, bool]:
        """Debit a failure. Returns the outcome and whether this call started a lock here."""
        spec = conf.FAILED_AUTH_LIMITS
        if not spec or client_ip is None:
            return Outcome(None), False
        limits = parse_limits(spec, name="auth-failures")
        names = [f"f:{limit.name}" for limit in limits]
        try:
            outcome = decide(f"f{client_ip}", limits, names, 1)
        except RateLimitUnavailable:
            # Fail-closed or not, a failed login stays a 401 while the store is down.
            return Outcome(None, failed_open=True), False
        decision = outcome.decision
        if decision is None or decision.allowed:
            return outcome, False
        with self.lock:
            started = client_ip not in self.locked
            if len(self.locked) >= self.max_entries:
                now = self.clock()
                self.locked = {ip: until for ip, until in self.locked.items() if until > now}
            self.locked[client_ip] = self.clock() + decision.retry_after_us / 1_000_000
        return outcome, started

    def clear(self) -> None:
        with self.lock:
            self.locked.clear()


limiter = FailedAuthLimiter()
