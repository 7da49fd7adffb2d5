"""One test for each bug an outside audit planted that the suite let through (issue 10).

docs/testing.md lists them with the test that now catches each.
"""

from __future__ import annotations

import datetime
import math

import pytest
from django.http import HttpResponse
from django.test import override_settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.test import APIClient

from apiauth import cache, errors
from apiauth.models import APIKey
from apiauth.store import RedisStore, get_store
from apiauth.throttling import gcra, headers
from apiauth.throttling.rates import Limit
from tests.conftest import RedisServer
from tests.factories import make_key

SECOND = 1_000_000


def test_lua_quota_admits_exactly_its_capacity(_redis: RedisServer) -> None:
    """``used + cost > cap`` in the script, not ``>=``: the last unit is admitted."""
    backend = get_store()
    assert isinstance(backend, RedisStore)
    quota = Limit("day", "quota", 3, window_s=86400)
    admitted = [backend.evaluate(["rl:{q}:d"], [quota], 1).allowed for _ in range(4)]
    assert admitted == [True, True, True, False]
    assert backend.evaluate(["rl:{q2}:d"], [quota], 3).allowed  # cost equal to what is left
    assert not backend.evaluate(["rl:{q3}:d"], [quota], 4).allowed


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


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute() -> None:
    key, raw = make_key()
    thirty_seconds_ago = timezone.now() - datetime.timedelta(seconds=30)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=thirty_seconds_ago)
    cache.invalidate([key.lineage_id])
    assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 200
    key.refresh_from_db()
    assert key.last_used_at == thirty_seconds_ago  # 30 s < 60 s: not written
    a_minute_ago = timezone.now() - datetime.timedelta(seconds=61)
    APIKey.objects.filter(pk=key.pk).update(last_used_at=a_minute_ago)
    cache.invalidate([key.lineage_id])
    APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
    key.refresh_from_db()
    assert key.last_used_at is not None and key.last_used_at > a_minute_ago


@pytest.mark.django_db
def test_last_used_update_is_conditional() -> None:
    """A stale copy never writes over a fresher use (the UPDATE's WHERE)."""
    key, _raw = make_key()
    first, stale = APIKey.objects.get(pk=key.pk), APIKey.objects.get(pk=key.pk)
    first.touch("192.0.2.1")
    stale.touch("192.0.2.2")  # its last_used_at is still None
    key.refresh_from_db()
    assert key.last_used_ip == "192.0.2.1"


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
