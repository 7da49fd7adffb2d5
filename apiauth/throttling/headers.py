"""Rate-limit response headers.

* ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (the de-facto set GitHub uses; ``Reset``
  is a Unix time in seconds) describe one limit: the one that refused the request, else the one
  with the fewest units left.
* ``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10 structured
  fields) list every limit: ``q`` units per ``w`` seconds, ``r`` units left and ``t`` seconds
  until the limit is whole again.
"""

from __future__ import annotations

import math
import time

from django.http import HttpResponseBase

from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit


def _seconds(us: int) -> int:
    """Whole seconds, rounded up, never negative."""
    return -(-us // 1_000_000) if us > 0 else 0


_fragments: dict[int, tuple[Limit, str, str]] = {}
"""Each limit's ``RateLimit-Policy`` item and the start of its ``RateLimit`` item, by the
limit's id (limits are parsed once and kept: :func:`~apiauth.throttling.rates.parse_limits`).
The entry holds the limit, so its id is not reused while it stands."""


def _fragments_of(limit: Limit) -> tuple[Limit, str, str]:
    found = _fragments.get(id(limit))
    if found is None:
        if len(_fragments) >= 1024:
            _fragments.clear()
        name = f'"{limit.name}"'
        found = (limit, f"{name};q={limit.capacity};w={limit.policy_window}", f"{name};r=")
        _fragments[id(limit)] = found
    return found


def apply(response: HttpResponseBase, decision: gcra.Decision, now: float | None = None) -> None:
    """Write the headers for ``decision``; ``now`` (Unix seconds) defaults to the clock."""
    tightest = decision.tightest
    if tightest is None:
        return
    now = time.time() if now is None else now
    headers = response.headers
    headers["X-RateLimit-Limit"] = str(tightest.limit.capacity)
    headers["X-RateLimit-Remaining"] = str(max(0, tightest.remaining))
    headers["X-RateLimit-Reset"] = str(math.ceil(now + tightest.reset_us / 1_000_000))
    policy, current = [], []
    for state in decision.states:
        _limit, item, start = _fragments_of(state.limit)
        policy.append(item)
        current.append(f"{start}{max(0, state.remaining)};t={_seconds(state.reset_us)}")
    headers["RateLimit-Policy"] = ", ".join(policy)
    headers["RateLimit"] = ", ".join(current)
