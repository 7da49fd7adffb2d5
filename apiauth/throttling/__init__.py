"""Rate limits: a Redis token bucket with plans, quotas, headers and brute-force protection.

``apiauth.throttling.TokenBucketThrottle`` is the DRF throttle class to configure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apiauth.throttling.throttle import TokenBucketThrottle

__all__ = ["TokenBucketThrottle"]


def __getattr__(name: str) -> Any:
    # Imported on first use: the pure modules of this package (gcra, rates) sit below the
    # store, which the throttle itself needs.
    if name == "TokenBucketThrottle":
        from apiauth.throttling.throttle import TokenBucketThrottle

        return TokenBucketThrottle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
