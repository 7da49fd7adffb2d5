"""Limits: parsing ``"60/min"`` style rates and plan definitions into :class:`Limit` objects.

A plan (or any limit spec) is a dict::

    {"rate": "60/min", "burst": 10, "quotas": ["1000/day"]}

``rate`` and ``burst`` make a token bucket (capacity ``burst``, refilled at ``rate``; ``burst``
defaults to the rate's count); each quota is a fixed window aligned on the Redis clock.

Every number is bounded here, once, so that the Lua script (whose numbers are IEEE doubles,
exact up to 2**53) computes every decision exactly: counts and costs up to ``MAX_COUNT``,
periods up to ``MAX_PERIOD`` seconds, at most one token per µs, and a bucket that refills
from empty within ``MAX_PERIOD``. A time stamp in µs (~1.8e15 today) plus twice the longest
span stays far below 2**53 (~9.0e15) for centuries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}
PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}
RATE_RE = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]*)\s*([a-z]+?)s?\s*", re.ASCII)
MAX_COUNT = 10**9
MAX_PERIOD = 366 * 86400
"""The longest period (and the longest a bucket may take to refill from empty), in seconds."""
MAX_COST = MAX_COUNT


class InvalidLimit(ValueError):
    """A rate or limit spec that cannot be used; the message says what to write instead."""


@dataclass(frozen=True, slots=True)
class Rate:
    count: int
    period: int  # seconds


def parse_rate(value: Any) -> Rate:
    """``"60/min"``, ``"1000/day"``, ``"5/10s"`` → :class:`Rate`."""
    match = RATE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None or match.group(3) not in UNITS:
        raise InvalidLimit(f"{value!r} is not a rate: write it like '60/min' or '1000/day'.")
    if len(match.group(1)) > 10 or len(match.group(2)) > 10:
        raise InvalidLimit(f"{value[:40]!r}: the numbers are too large.")
    count = int(match.group(1))
    period = int(match.group(2) or 1) * UNITS[match.group(3)]
    if not 0 < count <= MAX_COUNT:
        raise InvalidLimit(f"{value!r}: the count must be between 1 and {MAX_COUNT}.")
    if not 0 < period <= MAX_PERIOD:
        raise InvalidLimit(f"{value!r}: the period must be between 1 second and 366 days.")
    return Rate(count, period)


@dataclass(frozen=True, slots=True)
class Limit:
    """One limit as the Lua script and the local backend see it.

    ``kind`` is ``"bucket"`` (``capacity`` tokens, one every ``interval_us`` µs) or ``"quota"``
    (``capacity`` requests per fixed window of ``window_s`` seconds).
    """

    name: str
    kind: str
    capacity: int
    interval_us: int = 0
    window_s: int = 0

    @property
    def policy_window(self) -> int:
        """Seconds in which ``capacity`` units are granted, for ``RateLimit-Policy``'s ``w``."""
        if self.kind == "quota":
            return self.window_s
        return max(1, round(self.capacity * self.interval_us / 1_000_000))


def bucket(name: str, rate: Rate, burst: int | None = None) -> Limit:
    capacity = rate.count if burst is None else burst
    if not isinstance(capacity, int) or isinstance(capacity, bool) or not 0 < capacity <= MAX_COUNT:
        raise InvalidLimit(f"burst must be a whole number between 1 and {MAX_COUNT}.")
    if rate.count > rate.period * 1_000_000:
        raise InvalidLimit("a rate may grant at most 1000000 units per second.")
    # Integer maths, rounded to the nearest µs: no float ever reaches the script.
    interval_us = (rate.period * 1_000_000 + rate.count // 2) // rate.count
    # burst / rate, compared exactly (not through the rounded interval).
    if capacity * rate.period > MAX_PERIOD * rate.count:
        raise InvalidLimit(
            "the bucket would take more than 366 days to refill: raise the rate or lower the burst."
        )
    return Limit(name, "bucket", capacity, interval_us=interval_us)


def quota(rate: Rate) -> Limit:
    name = PERIOD_NAMES.get(rate.period, f"{rate.period}s")
    return Limit(name, "quota", rate.count, window_s=rate.period)


def parse_limits(spec: Any, name: str = "burst") -> tuple[Limit, ...]:
    """A limit spec (string rate or dict) → its limits; raises :class:`InvalidLimit`.

    Specs come from settings and are parsed on every request, so results are memoised by
    value (settings are read per call, never frozen at import).
    """
    try:
        return _parse_cached(json.dumps(spec, sort_keys=True), name)
    except TypeError:
        raise InvalidLimit(f"{spec!r} is not a limit spec.") from None


@lru_cache(maxsize=256)
def _parse_cached(spec_json: str, name: str) -> tuple[Limit, ...]:
    return _parse_limits(json.loads(spec_json), name)


def _parse_limits(spec: Any, name: str) -> tuple[Limit, ...]:
    if isinstance(spec, str):
        return (bucket(name, parse_rate(spec)),)
    if not isinstance(spec, Mapping):
        raise InvalidLimit(
            "a limit must be a rate string or a dict with 'rate', 'burst', 'quotas'."
        )
    unknown = set(spec) - {"rate", "burst", "quotas"}
    if unknown:
        listed = ", ".join(ascii(key) for key in sorted(map(str, unknown)))
        raise InvalidLimit(f"unknown key(s) {listed}: use rate, burst, quotas.")
    limits: list[Limit] = []
    if "rate" in spec:
        limits.append(bucket(name, parse_rate(spec["rate"]), spec.get("burst")))
    elif "burst" in spec:
        raise InvalidLimit("'burst' needs a 'rate'.")
    quotas = spec.get("quotas", [])
    if isinstance(quotas, str) or not isinstance(quotas, (list, tuple)):
        raise InvalidLimit("'quotas' must be a list of rates such as ['1000/day'].")
    limits.extend(quota(parse_rate(item)) for item in quotas)
    names = [limit.name for limit in limits]
    if len(set(names)) != len(names):
        raise InvalidLimit("two quotas share a period.")
    if not limits:
        raise InvalidLimit("a limit needs a 'rate' or 'quotas'.")
    return tuple(limits)


def merge_specs(
    base: Mapping[str, Any] | None, override: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A credential's overrides over its plan, key by key."""
    return {**(base or {}), **(override or {})}
