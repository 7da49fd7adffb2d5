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
import re
import time

from django.http import HttpResponseBase

from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit

_fragments: dict[int, tuple[Limit, str, str, bool]] = {}
"""Each limit's ``RateLimit-Policy`` item, the start of its ``RateLimit`` item, and whether
its name is plain, by the limit's id (limits are parsed once and kept:
:func:`~apiauth.throttling.rates.parse_limits`). The entry holds the limit, so its id is not
reused while it stands."""

_PLAIN = re.compile(r"[ !#-\[\]-~]*")
"""What a structured-field string holds unescaped: printable ASCII but ``"`` and ``\\``."""


def _fragments_of(limit: Limit) -> tuple[Limit, str, str, bool]:
    found = _fragments.get(id(limit))
    if found is None:
        if len(_fragments) >= 1024:
            _fragments.clear()
        name = f'"{limit.name}"'
        found = (
            limit,
            f"{name};q={limit.capacity};w={limit.policy_window}",
            f"{name};r=",
            _PLAIN.fullmatch(limit.name) is not None,
        )
        _fragments[id(limit)] = found
    return found


def apply(response: HttpResponseBase, decision: gcra.Decision, now: float | None = None) -> None:
    """Write the headers for ``decision``; ``now`` (Unix seconds) defaults to the clock."""
    tightest = decision.tightest
    if tightest is None:
        return
    now = time.time() if now is None else now
    policy, current, plain = [], [], True
    for state in decision.states:
        _limit, item, start, plain_name = _fragments_of(state.limit)
        plain = plain and plain_name
        policy.append(item)
        # _seconds() and max(0, …) inline: this runs for every limit of every response.
        left, reset = state.remaining, state.reset_us
        current.append(
            f"{start}{left if left > 0 else 0};t={-(-reset // 1_000_000) if reset > 0 else 0}"
        )
    remaining = tightest.remaining
    limit_value = str(tightest.limit.capacity)
    remaining_value = str(remaining if remaining > 0 else 0)
    reset_value = str(math.ceil(now + tightest.reset_us / 1_000_000))
    policy_value, current_value = ", ".join(policy), ", ".join(current)
    store = getattr(response.headers, "_store", None) if plain else None
    if type(store) is dict:
        # Integers and plain names (checked once per limit): what Django's per-header checks
        # (an ASCII name, a Latin-1 value without line breaks) would pass, as they are. Five
        # headers on every response: the checks cost more than the rest of this function.
        store["x-ratelimit-limit"] = ("X-RateLimit-Limit", limit_value)
        store["x-ratelimit-remaining"] = ("X-RateLimit-Remaining", remaining_value)
        store["x-ratelimit-reset"] = ("X-RateLimit-Reset", reset_value)
        store["ratelimit-policy"] = ("RateLimit-Policy", policy_value)
        store["ratelimit"] = ("RateLimit", current_value)
    else:  # a limit named outside plain ASCII: Django checks and encodes it
        headers = response.headers
        headers["X-RateLimit-Limit"] = limit_value
        headers["X-RateLimit-Remaining"] = remaining_value
        headers["X-RateLimit-Reset"] = reset_value
        headers["RateLimit-Policy"] = policy_value
        headers["RateLimit"] = current_value
