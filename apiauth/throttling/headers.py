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


def _seconds(us: int) -> int:
    return max(0, math.ceil(us / 1_000_000))


def apply(response: HttpResponseBase, decision: gcra.Decision, now: float | None = None) -> None:
    """Write the headers for ``decision``; ``now`` (Unix seconds) defaults to the clock."""
    tightest = decision.tightest
    if tightest is None:
        return
    now = time.time() if now is None else now
    response["X-RateLimit-Limit"] = str(tightest.limit.capacity)
    response["X-RateLimit-Remaining"] = str(max(0, tightest.remaining))
    response["X-RateLimit-Reset"] = str(math.ceil(now + tightest.reset_us / 1_000_000))
    response["RateLimit-Policy"] = ", ".join(
        f'"{s.limit.name}";q={s.limit.capacity};w={s.limit.policy_window}' for s in decision.states
    )
    response["RateLimit"] = ", ".join(
        f'"{s.limit.name}";r={max(0, s.remaining)};t={_seconds(s.reset_us)}'
        for s in decision.states
    )
