"""Rate limits: a Redis token bucket with plans, quotas, headers and brute-force protection.

``apiauth.throttling.TokenBucketThrottle`` is the DRF throttle class to configure.
"""

from apiauth.throttling.throttle import TokenBucketThrottle

__all__ = ["TokenBucketThrottle"]
