"""The limits' boundaries, exactly: the last unit of a quota, headers rounded the right way,
the wait a client is told, and which limit a refusal names."""

from __future__ import annotations

import math

import pytest
from django.http import HttpResponse
from django.test import override_settings
from rest_framework import exceptions

from apiauth import errors
from apiauth.store import LocalStore, RedisStore, get_store
from apiauth.throttling import gcra, headers
from apiauth.throttling.rates import Limit
from tests.conftest import RedisServer

SECOND = 1_000_000


@pytest.fixture(params=["redis", "local"])
def store(request: pytest.FixtureRequest, _redis: RedisServer) -> RedisStore | LocalStore:
    """The Lua script and the Python maths: every boundary holds on both."""
    if request.param == "local":
        return LocalStore()
    backend = get_store()
    assert isinstance(backend, RedisStore)
    return backend


def test_a_quota_admits_exactly_its_capacity(store: RedisStore | LocalStore) -> None:
    """``used + cost > cap``, not ``>=``: the last unit is admitted."""
    backend = store
    quota = Limit("day", "quota", 3, window_s=86400)
    admitted = [backend.evaluate(["rl:{q}:d"], [quota], 1).allowed for _ in range(4)]
    assert admitted == [True, True, True, False]
    assert backend.evaluate(["rl:{q2}:d"], [quota], 3).allowed  # cost equal to what is left
    assert not backend.evaluate(["rl:{q3}:d"], [quota], 4).allowed


def test_a_bucket_admits_exactly_its_burst(store: RedisStore | LocalStore) -> None:
    bucket = Limit("burst", "bucket", 3, interval_us=3600 * SECOND)
    admitted = [store.evaluate(["rl:{b}:b"], [bucket], 1).allowed for _ in range(4)]
    assert admitted == [True, True, True, False]
    assert store.evaluate(["rl:{b2}:b"], [bucket], 3).allowed
    assert not store.evaluate(["rl:{b3}:b"], [bucket], 4).allowed


def test_a_refused_request_takes_nothing(store: RedisStore | LocalStore) -> None:
    """Every limit is checked before any is debited: a request the quota refuses leaves the
    bucket as it was, on both paths."""
    bucket = Limit("burst", "bucket", 5, interval_us=3600 * SECOND)
    quota = Limit("day", "quota", 1, window_s=86400)
    keys = ["rl:{t}:b", "rl:{t}:d"]
    assert store.evaluate(keys, [bucket, quota], 1).allowed
    refused = store.evaluate(keys, [bucket, quota], 1)
    assert not refused.allowed
    assert refused.states[0].remaining == 4


def test_ratelimit_t_rounds_up() -> None:
    """``t`` is whole seconds until the limit is whole again, rounded up, never down."""
    limit = Limit("burst", "bucket", 10, interval_us=SECOND)
    response = HttpResponse()
    state = gcra.LimitState(limit, 8, 1_500_000, 0)
    headers.apply(response, gcra.Decision(True, (state,)), now=1_000_000_000.25)
    assert response["RateLimit"] == '"burst";r=8;t=2'
    assert response["X-RateLimit-Reset"] == str(math.ceil(1_000_000_000.25 + 1.5))
    assert response["X-RateLimit-Reset"] == "1000000002"


def test_ratelimit_reset_is_when_whole_again_not_now() -> None:
    limit = Limit("burst", "bucket", 10, interval_us=SECOND)
    response = HttpResponse()
    decision = gcra.Decision(True, (gcra.LimitState(limit, 0, 10 * SECOND, 0),))
    headers.apply(response, decision, now=1_700_000_000.0)
    assert response["X-RateLimit-Reset"] == "1700000010"


@pytest.mark.parametrize(("wait", "header"), [(1.2, "2"), (0.01, "1"), (3.0, "3"), (59.5, "60")])
def test_retry_after_is_our_ceiling(wait: float, header: str) -> None:
    """Ours, not DRF's: DRF's ``Throttled`` rounds its own ``wait`` up, but the 503 of a
    closed breaker carries the breaker's seconds as they are configured."""
    with override_settings(APIAUTH={"RATELIMIT_BREAKER_SECONDS": wait}):
        response = errors.exception_handler(errors.RateLimitServiceUnavailable(), {})
    assert response is not None and response.status_code == 503
    assert response["Retry-After"] == header
    assert response.data["retry_after"] == int(header)
    throttled = errors.exception_handler(exceptions.Throttled(wait=wait), {})
    assert throttled is not None and throttled["Retry-After"] == header


def test_blocking_is_the_limit_that_frees_last() -> None:
    burst = Limit("burst", "bucket", 10, interval_us=SECOND)
    day = Limit("day", "quota", 100, window_s=86400)
    decision = gcra.Decision(
        False,
        (gcra.LimitState(burst, 0, 10 * SECOND, 1 * SECOND), gcra.LimitState(day, 0, 5, 500)),
    )
    assert decision.blocking is not None and decision.blocking.limit is burst
    assert decision.retry_after_us == SECOND
    swapped = gcra.Decision(False, tuple(reversed(decision.states)))
    assert swapped.blocking is not None and swapped.blocking.limit is burst
