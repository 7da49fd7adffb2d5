"""Unit tests for the throttle's hooks, the lockout memory and the headers."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from rest_framework.request import Request

from apiauth.store import LocalStore
from apiauth.throttling import gcra, headers, limiter, lockout
from apiauth.throttling.rates import InvalidLimit, Limit, parse_limits
from apiauth.throttling.throttle import TokenBucketThrottle
from tests.conftest import RedisServer

SECOND = 1_000_000


class View:
    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def request(method: str = "GET") -> Request:
    return Request(RequestFactory().generic(method, "/"))


class TestCost:
    @pytest.mark.parametrize(
        ("view", "method", "cost"),
        [
            (View(), "GET", 1),
            (View(), "HEAD", 1),
            (View(), "OPTIONS", 1),
            (View(), "POST", 4),
            (View(), "PUT", 4),
            (View(), "PATCH", 4),
            (View(), "DELETE", 4),
            (View(throttle_cost=3), "GET", 3),
            (View(throttle_cost=3), "POST", 3),
            (View(throttle_cost={"POST": 7}), "POST", 7),
            (View(throttle_cost={"POST": 7}), "DELETE", 4),
            (View(throttle_cost={"POST": 7}), "GET", 1),
            (View(throttle_cost=0), "GET", 1),  # never below 1
            (View(throttle_cost=-5), "POST", 1),
        ],
    )
    def test_cost(self, view: View, method: str, cost: int) -> None:
        # UNSAFE_METHOD_COST differs from 1, so a POST counted as safe shows.
        with override_settings(APIAUTH={"UNSAFE_METHOD_COST": 4}):
            assert TokenBucketThrottle().get_cost(request(method), view) == cost

    def test_wait_before_any_decision(self) -> None:
        assert TokenBucketThrottle().wait() is None


class TestIdentity:
    def test_kinds(self) -> None:
        class User:
            is_authenticated = True
            pk = 42

        assert limiter.identity(None, User(), "192.0.2.1") == "u42"
        assert limiter.identity(None, None, "192.0.2.1") == "a192.0.2.1"
        assert limiter.identity(None, None, None) == "aunknown"

    def test_only_a_user_who_says_so_is_one(self) -> None:
        from django.contrib.auth.models import AnonymousUser

        # Anonymous users are limited by address, not as one shared "user None".
        assert limiter.identity(None, AnonymousUser(), "192.0.2.1") == "a192.0.2.1"
        assert limiter.identity(None, SimpleNamespace(pk=42), "192.0.2.1") == "a192.0.2.1"

    def test_unserialisable_spec(self) -> None:
        with pytest.raises(InvalidLimit):
            parse_limits(object())


class TestLockoutMemory:
    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 1}})
    def test_records_and_forgets(self, _redis: RedisServer) -> None:
        now = [1000.0]
        memory = lockout.FailedAuthLimiter(clock=lambda: now[0])
        assert memory.locked_for(None) is None
        # Clients of unknown address share one identity: they are counted, not exempt.
        outcome, started = memory.record_failure(None)
        assert outcome.decision is not None and outcome.decision.allowed and not started
        _outcome, started = memory.record_failure(None)
        assert started and memory.locked_for(None) is not None
        outcome, started = memory.record_failure("192.0.2.5")
        assert outcome.decision is not None and outcome.decision.allowed and not started
        _outcome, started = memory.record_failure("192.0.2.5")
        assert started
        _outcome, started = memory.record_failure("192.0.2.5")  # already known here
        assert not started
        left = memory.locked_for("192.0.2.5")
        assert left is not None and 0 < left <= 60
        now[0] += 61
        assert memory.locked_for("192.0.2.5") is None

    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 1}})
    def test_bounded(self, _redis: RedisServer) -> None:
        now = [1000.0]
        memory = lockout.FailedAuthLimiter(clock=lambda: now[0])
        memory.max_entries = 1
        for ip in ("192.0.2.6", "192.0.2.6"):
            memory.record_failure(ip)
        now[0] += 120
        for ip in ("192.0.2.7", "192.0.2.7"):
            memory.record_failure(ip)
        assert list(memory.locked) == ["192.0.2.7"]

    @override_settings(
        APIAUTH={
            "FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 1},
            "RATELIMIT_FAILURE_MODE": "closed",
        }
    )
    def test_store_down_keeps_failures_401(self, _redis: RedisServer) -> None:
        _redis.stop()
        try:
            outcome, started = lockout.FailedAuthLimiter().record_failure("192.0.2.8")
        finally:
            _redis.start()
        assert outcome.failed_open and outcome.decision is None and not started

    @override_settings(
        APIAUTH={
            "FAILED_AUTH_LIMITS": {"rate": "1/min", "burst": 1},
            "RATELIMIT_FAILURE_MODE": "closed",
        }
    )
    def test_strict_lock_reads(self, _redis: RedisServer) -> None:
        now = [1000.0]
        memory = lockout.FailedAuthLimiter(clock=lambda: now[0])
        assert memory.is_locked("192.0.2.9") is None  # nothing recorded
        memory.record_failure("192.0.2.9")
        other = lockout.FailedAuthLimiter(clock=lambda: now[0])
        for _ in range(2):  # from the store, then from this worker's memory
            left = other.is_locked("192.0.2.9")
            assert left is not None and 0 < left <= 60
        assert other.locked_for("192.0.2.9") is not None
        _redis.stop()
        try:
            # The lock cannot be read: valid credentials are not refused for it.
            assert lockout.FailedAuthLimiter().is_locked("192.0.2.9") is None
        finally:
            _redis.start()

    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": None})
    def test_strict_lock_without_limits(self) -> None:
        assert lockout.FailedAuthLimiter().is_locked("192.0.2.9") is None

    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "10/min", "burst": 20}})
    def test_summaries_under_the_default_limits(self, _redis: RedisServer) -> None:
        """Locks of ~6 s end and restart; the summary still comes once a minute."""
        now = [1000.0]
        memory = lockout.FailedAuthLimiter(clock=lambda: now[0])
        summaries: list[tuple[float, int]] = []
        for _ in range(21):
            memory.record_failure("192.0.2.20")
        assert memory.locked_for("192.0.2.20") is not None
        for _ in range(300):  # 2 failures a second for 150 s
            if memory.locked_for("192.0.2.20") is not None:
                count = memory.count_suppressed("192.0.2.20")
                if count:
                    summaries.append((now[0], count))
            else:
                memory.record_failure("192.0.2.20")  # Redis's clock: still locked
            now[0] += 0.5
        # Each lands on the first failure answered after the minute (within one lock gap).
        assert [int(at) for at, _count in summaries] in ([1060, 1120], [1060, 1121], [1061, 1121])
        assert all(count >= 100 for _at, count in summaries)

    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "1/hour", "burst": 1}})
    def test_bounded_when_full_of_live_locks(self, _redis: RedisServer) -> None:
        memory = lockout.FailedAuthLimiter()
        memory.max_entries = 1
        for ip in ("192.0.2.21", "192.0.2.21", "192.0.2.22", "192.0.2.22"):
            outcome, _started = memory.record_failure(ip)
        assert outcome.decision is not None and not outcome.decision.allowed  # still refused
        assert list(memory.locked) == ["192.0.2.21"]

    @override_settings(APIAUTH={"FAILED_AUTH_LIMITS": {"rate": "1/hour", "burst": 1}})
    def test_no_headers_for_a_lock_not_remembered(self, _redis: RedisServer) -> None:
        memory = lockout.FailedAuthLimiter()
        memory.max_entries = 0  # full: locks are decided by the store, not remembered
        memory.record_failure("192.0.2.23")
        outcome, started = memory.record_failure("192.0.2.23")
        assert started and outcome.decision is not None and not outcome.decision.allowed
        assert memory.locked_for("192.0.2.23") is None
        assert memory.known_decision("192.0.2.23") is None

    def test_suppressed_failures_need_a_known_lock(self) -> None:
        memory = lockout.FailedAuthLimiter()
        assert memory.count_suppressed("192.0.2.9") is None
        limit = Limit("auth-failures", "bucket", 1, interval_us=60 * SECOND)
        memory._remember(
            "192.0.2.9",
            gcra.Decision(False, (gcra.LimitState(limit, 0, 60 * SECOND, 60 * SECOND),)),
        )
        assert memory.count_suppressed("192.0.2.9") is None  # within the first minute
        assert memory.locked["192.0.2.9"].suppressed == 1


def test_local_backend_drops_expired_entries_when_full() -> None:
    now = [1_700_000_000 * SECOND]
    store = LocalStore(clock=lambda: now[0])
    store.max_entries = 1
    limit = Limit("burst", "bucket", 5, interval_us=SECOND)
    store.evaluate(["a"], [limit], 1)
    now[0] += 10 * SECOND
    store.evaluate(["b"], [limit], 1)
    assert list(store.store) == ["b"]


def test_headers_need_a_limit() -> None:
    response = HttpResponse()
    headers.apply(response, gcra.Decision(True, ()))
    assert "X-RateLimit-Limit" not in response


def test_error_log_memory_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    from apiauth.store import RedisStore

    backend = RedisStore()
    backend._logged = {f"error {i}": backend.breaker.clock() for i in range(1001)}
    backend._log_error("error 0")  # within its minute: not logged again
    assert "error 0" not in caplog.text and len(backend._logged) == 1001
    backend._log_error("a new error")  # logged; the full memory starts over
    assert list(backend._logged) == ["a new error"] and "a new error" in caplog.text


class TestHeadersExactly:
    burst = Limit("burst", "bucket", 10, interval_us=SECOND)
    day = Limit("day", "quota", 1000, window_s=86400)

    def apply(self, *states: gcra.LimitState, allowed: bool = True) -> HttpResponse:
        response = HttpResponse()
        headers.apply(response, gcra.Decision(allowed, states), now=1000.0)
        return response

    def test_every_header(self) -> None:
        response = self.apply(
            gcra.LimitState(self.burst, 7, 2_500_000, 0),
            gcra.LimitState(self.day, 999, 86_399_000_001, 0),
        )
        assert response["X-RateLimit-Limit"] == "10"
        assert response["X-RateLimit-Remaining"] == "7"
        assert response["X-RateLimit-Reset"] == "1003"
        assert response["RateLimit-Policy"] == '"burst";q=10;w=10, "day";q=1000;w=86400'
        assert response["RateLimit"] == '"burst";r=7;t=3, "day";r=999;t=86400'

    def test_written_as_django_would(self) -> None:
        """Plain names skip Django's per-header checks: the headers read, serialise and
        compare as the ones set through ``response[name] = value``."""
        states = (
            gcra.LimitState(self.burst, 7, 2_500_000, 0),
            gcra.LimitState(self.day, 999, 86_399_000_001, 0),
        )
        fast = self.apply(*states)
        through_django = HttpResponse()
        for name, value in fast.items():
            through_django[name] = value
        assert fast.serialize_headers() == through_django.serialize_headers()
        assert fast.headers["ratelimit-policy"] == fast["RateLimit-Policy"]

    @pytest.mark.parametrize("name", ['say "hi"', "caf\u00e9", "back\\slash"])
    def test_a_name_outside_plain_ascii_goes_through_django(self, name: str) -> None:
        """Django checks and encodes such a value as it would any other (a system check
        could not know every view's scope name)."""
        odd = Limit(name, "bucket", 10, interval_us=SECOND)
        response = self.apply(gcra.LimitState(odd, 7, 2_500_000, 0))
        expected = HttpResponse()
        expected["RateLimit"] = f'"{name}";r=7;t=3'
        assert response["RateLimit"] == expected["RateLimit"]
        assert response["X-RateLimit-Limit"] == "10"

    def test_negative_remaining_and_reset_are_zero(self) -> None:
        response = self.apply(gcra.LimitState(self.burst, -3, -5, 0))
        assert response["X-RateLimit-Remaining"] == "0"
        assert response["RateLimit"] == '"burst";r=0;t=0'
        assert response["X-RateLimit-Reset"] == "1000"

    def test_tightest_breaks_ties_by_the_later_reset(self) -> None:
        response = self.apply(
            gcra.LimitState(self.burst, 0, 10 * SECOND, 0),
            gcra.LimitState(self.day, 0, 3600 * SECOND, 0),
        )
        assert response["X-RateLimit-Limit"] == "1000"
        assert response["X-RateLimit-Reset"] == "4600"

    def test_the_refusing_limit_wins(self) -> None:
        response = self.apply(
            gcra.LimitState(self.burst, 5, 5 * SECOND, 0),
            gcra.LimitState(self.day, 20, 3600 * SECOND, 3600 * SECOND),
            allowed=False,
        )
        assert response["X-RateLimit-Limit"] == "1000"
        assert response["X-RateLimit-Remaining"] == "20"

    def test_policy_window_of_a_bucket(self) -> None:
        slow = Limit("burst", "bucket", 3, interval_us=400_000)  # 3 tokens in 1.2 s
        assert slow.policy_window == 1
        assert Limit("b", "bucket", 1, interval_us=100).policy_window == 1  # never 0
        assert Limit("b", "bucket", 5, interval_us=1_500_000).policy_window == 8  # 7.5 rounds up


def test_keys_and_limits_go_in_pairs() -> None:
    limit = Limit("burst", "bucket", 1, interval_us=SECOND)
    with pytest.raises(ValueError):
        gcra.evaluate({}, ["a"], [limit, limit], 1, 0)


class TestHeaderDetails:
    burst = Limit("burst", "bucket", 10, interval_us=SECOND)

    def test_names_as_documented(self) -> None:
        response = HttpResponse()
        state = gcra.LimitState(self.burst, 1, 1_000_001, 0)
        headers.apply(response, gcra.Decision(True, (state,)), now=1000.0)
        names = [name for name, _value in response.items() if "ateLimit" in name]
        assert names == [
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
            "RateLimit-Policy",
            "RateLimit",
        ]
        # 1.000001 s is more than a second: rounded up, both ways of saying it.
        assert response["X-RateLimit-Reset"] == "1002"
        assert response["RateLimit"] == '"burst";r=1;t=2'

    def test_a_full_limit_says_zero_seconds(self) -> None:
        response = HttpResponse()
        headers.apply(response, gcra.Decision(True, (gcra.LimitState(self.burst, 10, 0, 0),)))
        assert response["RateLimit"] == '"burst";r=10;t=0'


def test_failing_open_is_reported_once_per_interval(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request admitted without a decision is counted; the warning says how many since
    the last one, at most every ``WARNING_INTERVAL`` seconds."""
    now = [1000.0]
    monkeypatch.setattr(limiter, "time", SimpleNamespace(monotonic=lambda: now[0]))
    before = limiter.failures_open
    limiter.count_failure("connection refused")
    now[0] += 5
    limiter.count_failure("connection refused")
    limiter.count_failure("connection refused")
    now[0] += limiter.WARNING_INTERVAL - 5  # exactly one interval after the first warning
    limiter.count_failure("timed out")
    assert limiter.failures_open - before == 4
    assert caplog.messages == [
        "rate limiting skipped for 1 request(s), store unavailable: connection refused",
        "rate limiting skipped for 3 request(s), store unavailable: timed out",
    ]


def test_deciding_locally_is_reported_as_such(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``RATELIMIT_FAILURE_MODE = "local"`` still limits: its warning says so."""
    now = [1000.0]
    monkeypatch.setattr(limiter, "time", SimpleNamespace(monotonic=lambda: now[0]))
    limiter.count_failure("connection refused", "local")
    now[0] += limiter.WARNING_INTERVAL
    limiter.count_failure("timed out", "open")
    assert caplog.messages == [
        "rate limits decided in this process for 1 request(s), store unavailable: "
        "connection refused",
        "rate limiting skipped for 1 request(s), store unavailable: timed out",
    ]


class TestCredentialState:
    """What the admin shows of a credential's limits: a look, never a debit."""

    pytestmark = pytest.mark.django_db

    def test_a_look_asks_whether_one_more_request_would_pass(self, _redis: RedisServer) -> None:
        from tests.factories import make_key

        key, _raw = make_key()  # the test plan: a burst of 10
        credential = key.to_credential()
        limits = limiter.plan_limits(credential)
        ident = limiter.identity(credential, None, None)
        for _ in range(9):
            limiter.decide(ident, limits, limiter.plan_key_names(limits), 1)
        decision, error = limiter.credential_state(credential)
        assert error is None and decision is not None
        assert decision.allowed and decision.states[0].remaining == 1
        again, _error = limiter.credential_state(credential)
        assert again is not None and again.states[0].remaining == 1  # nothing debited

    def test_the_store_down_is_said(self, _redis: RedisServer) -> None:
        from tests.factories import make_key

        key, _raw = make_key()
        _redis.stop()
        try:
            decision, error = limiter.credential_state(key.to_credential())
        finally:
            _redis.start()
        assert decision is None
        assert error is not None and "connect" in error.lower()  # redis-py's own words


class TestPlanLimits:
    """A credential's limits are parsed once per plan and overrides object, for every plan
    on its own, and the memo stays bounded."""

    def credential(self, plan: str | None, limits: dict[str, Any] | None = None) -> Any:
        from apiauth.credentials import Credential

        return Credential("api_key", "k", frozenset(), plan, None, None, "l", limits)

    @pytest.fixture
    def parsed(self, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
        from apiauth.conf import conf

        conf.derived.clear()
        calls: list[Any] = []
        parse = limiter._plan_limits

        def counted(credential: Any) -> Any:
            calls.append(credential.plan)
            return parse(credential)

        monkeypatch.setattr(limiter, "_plan_limits", counted)
        return calls

    def test_each_plan_its_own(self, parsed: list[Any]) -> None:
        free, pro = self.credential("free"), self.credential("pro")
        assert limiter.plan_limits(free) != limiter.plan_limits(pro)
        overrides = {"burst": 3}
        custom = self.credential("free", overrides)
        assert limiter.plan_limits(custom)[0].capacity == 3
        for _ in range(3):
            limiter.plan_limits(free), limiter.plan_limits(custom)
        assert parsed == ["free", "pro", "free"]

    def test_bounded(self, parsed: list[Any]) -> None:

        # Each overrides object is its own entry (a cached credential keeps its object).
        kept = [self.credential("free", {"burst": 1 + n % 5}) for n in range(limiter.MAX_DERIVED)]
        for credential in kept:
            limiter.plan_limits(credential)
        assert len(limiter.plan_memo()) == limiter.MAX_DERIVED
        limiter.plan_limits(self.credential("free", {"burst": 2}))
        assert len(limiter.plan_memo()) == 1

    def test_without_any_limits(self, caplog: pytest.LogCaptureFixture) -> None:
        with override_settings(APIAUTH={"ANONYMOUS_LIMITS": None}):
            assert limiter.plan_limits(None) == ()
        broken = self.credential(None, {"burst": "lots"})
        with override_settings(APIAUTH={"PLANS": {}, "DEFAULT_PLAN": None}):
            assert limiter.plan_limits(broken) == ()
        assert "rate-limit overrides ignored" in caplog.text


class TestStoreDown:
    pytestmark = pytest.mark.django_db

    def test_failing_open_says_so(
        self, _redis: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        limits = parse_limits({"rate": "10/min", "burst": 5})
        _redis.stop()
        try:
            with override_settings(APIAUTH={"RATELIMIT_FAILURE_MODE": "open"}):
                outcome = limiter.decide("aX", limits, ["burst"], 1)
            closed = override_settings(APIAUTH={"RATELIMIT_FAILURE_MODE": "closed"})
            with closed, pytest.raises(limiter.RateLimitUnavailable) as caught:
                limiter.decide("aX", limits, ["burst"], 1)
        finally:
            _redis.start()
        assert outcome == limiter.Outcome(None, failed_open=True)
        [warning] = caplog.messages
        assert warning.startswith("rate limiting skipped for 1 request(s), store unavailable: ")
        reason = warning.split("store unavailable: ", 1)[1]
        assert reason and reason != "None"
        assert str(caught.value) == "circuit breaker open"  # the breaker opened meanwhile


class TestReset:
    pytestmark = pytest.mark.django_db

    def test_one_lineage_only(self, _redis: RedisServer) -> None:
        """Even beside a lineage whose name differs only in its last character."""
        import uuid

        from tests.factories import make_key

        first, _raw = make_key(lineage=uuid.UUID("00000000-0000-4000-8000-000000000000"))
        second, _raw = make_key(lineage=uuid.UUID("00000000-0000-4000-8000-000000000001"))
        for key in (first, second):
            credential = key.to_credential()
            limits = limiter.plan_limits(credential)
            ident = limiter.identity(credential, None, None)
            limiter.decide(ident, limits, limiter.plan_key_names(limits), 1)
        assert limiter.reset_credential(first.to_credential()) >= 1
        names: list[bytes] = _redis.client().keys("*")  # type: ignore[assignment]
        remaining = {name.decode() for name in names}
        assert remaining and all("000000000001}" in name for name in remaining)
