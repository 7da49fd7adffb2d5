"""Rate limits through the demo's DRF views, against the real redis-server."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from apiauth.models import APIKey
from tests.conftest import RedisServer
from tests.factories import make_key
from tests.utils import top_level_commands

pytestmark = pytest.mark.django_db

PING = "/v1/ping"


def apiauth_settings(**overrides: Any) -> dict[str, Any]:
    return {**settings.APIAUTH, **overrides}


def get(raw: str | None = None, path: str = PING, ip: str = "127.0.0.1") -> Any:
    headers: dict[str, Any] = {"REMOTE_ADDR": ip}
    if raw is not None:
        headers["HTTP_X_API_KEY"] = raw
    return APIClient().get(path, **headers)


def exhaust(raw: str, count: int = 10) -> None:
    for _ in range(count):
        assert get(raw).status_code == 200


class TestHeaders:
    def test_on_200(self) -> None:
        _key, raw = make_key()
        response = get(raw)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "10"
        assert response["X-RateLimit-Remaining"] == "9"
        # Whole again one token (360 s) after the request: a Unix time, not "now".
        assert time.time() + 355 <= int(response["X-RateLimit-Reset"]) <= time.time() + 361
        assert response["RateLimit-Policy"] == '"burst";q=10;w=3600, "day";q=1000;w=86400'
        burst, day = response["RateLimit"].split(", ")
        assert burst == '"burst";r=9;t=360'
        assert day.startswith('"day";r=999;t=')

    def test_on_429_with_honest_retry_after(self) -> None:
        _key, raw = make_key()
        exhaust(raw)
        response = get(raw)
        assert response.status_code == 429
        assert response["Content-Type"] == "application/problem+json"
        assert 355 <= int(response["Retry-After"]) <= 360  # one token, 360 s after the first
        assert response["X-RateLimit-Remaining"] == "0"
        body = response.json()
        assert body["code"] == "throttled" and body["retry_after"] == int(response["Retry-After"])
        assert body["limit"] == {"name": "burst", "quota": 10, "window": 3600}

    @override_settings(APIAUTH=apiauth_settings(PLANS={"free": {"rate": "1/2s", "burst": 1}}))
    def test_waiting_retry_after_is_enough(self) -> None:
        _key, raw = make_key()
        assert get(raw).status_code == 200
        response = get(raw)
        assert response.status_code == 429
        # Sleeping longer than needed only helps: this test does not race the clock.
        time.sleep(int(response["Retry-After"]))
        assert get(raw).status_code == 200

    def test_on_403_insufficient_scope(self) -> None:
        _key, raw = make_key(scopes=["orders:read"])
        response = APIClient().post(PING.replace("ping", "orders"), {}, HTTP_X_API_KEY=raw)
        assert response.status_code == 403
        # A refused write still costs a write (5) and says so.
        assert response["X-RateLimit-Remaining"] == "5"

    def test_on_401_failed_authentication(self) -> None:
        response = get("apk_wrong")
        assert response.status_code == 401
        assert response["RateLimit-Policy"] == '"auth-failures";q=20;w=120'
        assert response["X-RateLimit-Remaining"] == "19"

    def test_on_401_without_credentials(self) -> None:
        response = get()
        assert response.status_code == 401
        assert response["RateLimit-Policy"] == '"burst";q=10;w=3600'

    def test_not_on_unthrottled_responses(self) -> None:
        response = APIClient().get("/health")  # a view without throttles
        assert response.status_code == 200 and response.json() == {"status": "ok"}
        assert not [name for name in response.headers if "ratelimit" in name.lower()]


class TestLimits:
    def test_plans_per_key(self) -> None:
        _key, raw = make_key(plan="pro")
        assert get(raw)["X-RateLimit-Limit"] == "100"

    def test_per_key_override(self) -> None:
        _key, raw = make_key(rate_limits={"burst": 3})
        assert get(raw)["X-RateLimit-Limit"] == "3"
        get(raw)
        get(raw)
        assert get(raw).status_code == 429

    def test_unsafe_methods_cost_more_and_scopes_add_limits(self) -> None:
        _key, raw = make_key()
        response = APIClient().post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        assert response.status_code == 201
        assert '"orders";q=20' in response["RateLimit-Policy"]
        assert '"burst";r=5' in response["RateLimit"]
        assert '"orders";r=15' in response["RateLimit"]
        APIClient().post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        refused = APIClient().post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        # Five tokens at one every 360 s, less the moments since the first POST.
        assert refused.status_code == 429
        assert 1795 <= int(refused["Retry-After"]) <= 1800

    def test_buckets_follow_the_key_lineage_across_a_roll(self) -> None:
        import datetime

        key, raw = make_key()
        exhaust(raw)
        _new, new_raw = APIKey.objects.roll(key, datetime.timedelta(hours=1))
        assert get(new_raw).status_code == 429

    def test_keys_of_one_owner_do_not_share_buckets(self) -> None:
        _a, raw_a = make_key()
        _b, raw_b = make_key()
        exhaust(raw_a)
        assert get(raw_b).status_code == 200

    def test_anonymous_limited_per_address(self) -> None:
        for _ in range(10):
            assert APIClient().get(PING, REMOTE_ADDR="192.0.2.1").status_code == 401
        assert APIClient().get(PING, REMOTE_ADDR="192.0.2.1").status_code == 429
        assert APIClient().get(PING, REMOTE_ADDR="192.0.2.2").status_code == 401

    def test_ipv6_clients_share_their_64(self) -> None:
        for i in range(10):
            response = APIClient().get(PING, REMOTE_ADDR=f"2001:db8:1:2::{i + 1:x}")
            assert response.status_code == 401
        assert APIClient().get(PING, REMOTE_ADDR="2001:db8:1:2:ffff::9").status_code == 429
        assert APIClient().get(PING, REMOTE_ADDR="2001:db8:1:3::1").status_code == 401

    def test_health_is_never_throttled(self) -> None:
        for _ in range(40):
            response = APIClient().get("/health", REMOTE_ADDR="192.0.2.1")
            assert response.status_code == 200
            assert "X-RateLimit-Limit" not in response

    def test_one_redis_command_per_request(self, _redis: RedisServer) -> None:
        _key, raw = make_key()
        get(raw)
        assert top_level_commands(_redis.client(), lambda: get(raw)) == {"cmdstat_evalsha": 1}

    def test_throttle_adds_no_query(self, django_assert_num_queries: Any) -> None:
        _key, raw = make_key()
        get(raw)
        with django_assert_num_queries(0):
            assert get(raw).status_code == 200

    @override_settings(APIAUTH=apiauth_settings(RATELIMIT_BACKEND="local"))
    def test_local_backend(self, _redis: RedisServer) -> None:
        _key, raw = make_key()
        exhaust(raw)
        assert get(raw).status_code == 429
        assert not _redis.client().keys("rl:*")


# A slow refill, so no test depends on how fast the machine sends twenty requests.
SLOW_LOCKOUT = {"rate": "1/hour", "burst": 20}


def lock_out(ip: str) -> None:
    for _ in range(20):
        assert get("apk_wrong", ip=ip).status_code == 401


class TestFailedAuthentication:
    @pytest.fixture(autouse=True)
    def _slow_refill(self) -> Any:
        with override_settings(APIAUTH=apiauth_settings(FAILED_AUTH_LIMITS=SLOW_LOCKOUT)):
            yield

    def test_lockout_after_twenty_failures(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.WARNING, logger="apiauth.audit"):
            lock_out("198.51.100.7")
            response = get("apk_wrong", ip="198.51.100.7")
        assert response.status_code == 429
        assert response.json()["code"] == "too_many_failures"
        assert 3590 <= int(response["Retry-After"]) <= 3600
        records = [getattr(r, "apiauth", {}) for r in caplog.records]
        [event] = [r for r in records if r.get("event") == "lockout"]
        assert event["client_ip"] == "198.51.100.7"
        assert 3590 <= event["seconds"] <= 3600

    def test_valid_keys_are_still_honoured(self, django_assert_num_queries: Any) -> None:
        """An attacker behind a customer's NAT must not lock the customer out."""
        _key, raw = make_key()
        lock_out("198.51.100.7")
        assert get(raw, ip="198.51.100.7").status_code == 200  # first use writes last_used
        for _ in range(5):
            with django_assert_num_queries(0):
                assert get(raw, ip="198.51.100.7").status_code == 200
        # A malformed or checksum-failing guess never reaches the database...
        with django_assert_num_queries(0):
            assert get("apk_wrong", ip="198.51.100.7").status_code == 429
            assert (
                get(raw[:-1] + ("A" if raw[-1] != "A" else "B"), ip="198.51.100.7").status_code
                == 429
            )
        # ... and a well-formed unknown key costs one indexed lookup, then 429, not 401.
        unknown = make_key()[1]
        APIKey.objects.filter(public_id=unknown.split("_")[1]).delete()
        with django_assert_num_queries(1):
            response = get(unknown, ip="198.51.100.7")
        assert response.status_code == 429 and response.json()["code"] == "too_many_failures"
        # Other addresses are unaffected.
        assert get("apk_wrong", ip="198.51.100.8").status_code == 401

    def test_headers_on_every_lockout_refusal(self) -> None:
        lock_out("198.51.100.14")
        for _ in range(3):  # the first from the store, then from this worker's memory
            response = get("apk_wrong", ip="198.51.100.14")
            assert response.status_code == 429
            assert response["X-RateLimit-Limit"] == "20"
            assert response["X-RateLimit-Remaining"] == "0"
            assert response["RateLimit-Policy"] == '"auth-failures";q=20;w=72000'
            assert 3590 <= int(response["Retry-After"]) <= 3600

    def test_every_worker_answers_alike(self, _redis: RedisServer) -> None:
        from apiauth.throttling import lockout

        _key, raw = make_key()
        lock_out("198.51.100.9")
        assert get("apk_wrong", ip="198.51.100.9").status_code == 429  # this worker knows
        assert get(raw, ip="198.51.100.9").status_code == 200
        lockout.limiter.clear()  # another worker: knows nothing locally
        assert get(raw, ip="198.51.100.9").status_code == 200
        assert get("apk_wrong", ip="198.51.100.9").status_code == 429
        lockout.limiter.clear()
        unknown = raw[:-10] + "A" * 10
        assert get(unknown, ip="198.51.100.9").status_code == 429
        # Once this worker knows the lock, further failures cost no round trip.
        sent = top_level_commands(
            _redis.client(), lambda: [get("apk_wrong", ip="198.51.100.9") for _ in range(3)]
        )
        assert sent == {}

    def test_failures_during_a_lock_are_logged_in_summary(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        from apiauth.throttling import lockout

        lock_out("198.51.100.11")
        caplog.clear()
        now = [lockout.limiter.clock()]
        lockout.limiter.clock = lambda: now[0]
        try:
            with caplog.at_level(logging.WARNING, logger="apiauth.audit"):
                for _ in range(30):
                    assert get("apk_wrong", ip="198.51.100.11").status_code == 429
                events = [getattr(r, "apiauth", {}).get("event") for r in caplog.records]
                assert events.count("auth_failure") == 1  # the one that found the lock
                assert events.count("lockout") == 1
                assert "lockout_failures" not in events
                # A second more than the interval: monotonic + 60 - monotonic can round below 60.
                now[0] += lockout.SUMMARY_INTERVAL + 1
                assert get("apk_wrong", ip="198.51.100.11").status_code == 429
            records = [getattr(r, "apiauth", {}) for r in caplog.records]
            summary = [r for r in records if r.get("event") == "lockout_failures"]
            assert summary == [
                {"event": "lockout_failures", "client_ip": "198.51.100.11", "count": 30}
            ]
        finally:
            lockout.limiter.clock = time.monotonic

    def test_ipv6_clients_are_locked_by_64(self) -> None:
        _key, raw = make_key()
        for i in range(20):
            assert get("apk_wrong", ip=f"2001:db8:7:7::{i + 1:x}").status_code == 401
        assert get("apk_wrong", ip="2001:db8:7:7:abcd::1").status_code == 429
        assert get("apk_wrong", ip="2001:db8:7:8::1").status_code == 401
        assert get(raw, ip="2001:db8:7:7::99").status_code == 200

    @override_settings(
        APIAUTH=apiauth_settings(FAILED_AUTH_LIMITS=SLOW_LOCKOUT, TRUSTED_PROXIES=["127.0.0.1/32"])
    )
    def test_a_zone_id_is_not_a_new_address(self) -> None:
        for i in range(20):
            response = APIClient().get(
                PING, HTTP_X_API_KEY="apk_wrong", HTTP_X_FORWARDED_FOR=f"[fe80::1%eth{i}]:4711"
            )
            assert response.status_code == 401
        response = APIClient().get(
            PING, HTTP_X_API_KEY="apk_wrong", HTTP_X_FORWARDED_FOR="fe80::1%lo"
        )
        assert response.status_code == 429

    @override_settings(
        APIAUTH=apiauth_settings(FAILED_AUTH_LIMITS=SLOW_LOCKOUT, FAILED_AUTH_LOCKOUT="all")
    )
    def test_strict_mode_blocks_every_request_on_every_worker(
        self, _redis: RedisServer, django_assert_num_queries: Any
    ) -> None:
        from apiauth.throttling import lockout

        _key, raw = make_key()
        assert get(raw, ip="198.51.100.12").status_code == 200
        sent = top_level_commands(_redis.client(), lambda: get(raw, ip="198.51.100.12"))
        assert sent == {"cmdstat_evalsha": 2}  # the lock is read, then the limits
        lock_out("198.51.100.12")
        with django_assert_num_queries(0):
            assert get(raw, ip="198.51.100.12").status_code == 429
            lockout.limiter.clear()  # another worker
            response = get(raw, ip="198.51.100.12")
        assert response.status_code == 429 and response.json()["code"] == "too_many_failures"
        # The lock read from the store is the address's: its limit in the headers.
        assert response["RateLimit"].startswith('"auth-failures";r=0;')
        assert get(raw, ip="198.51.100.13").status_code == 200

    def test_lock_ends(self) -> None:
        from apiauth.throttling import lockout

        limits = {"rate": "1/s", "burst": 2}
        with override_settings(APIAUTH=apiauth_settings(FAILED_AUTH_LIMITS=limits)):
            for _ in range(2):
                assert get("apk_wrong", ip="198.51.100.10").status_code == 401
            response = get("apk_wrong", ip="198.51.100.10")
            assert response.status_code == 429
            # Waiting longer than Retry-After only helps: no pacing to keep up with.
            time.sleep(int(response["Retry-After"]))
            assert lockout.limiter.locked_for("198.51.100.10") is None
            assert get("apk_wrong", ip="198.51.100.10").status_code == 401

    @override_settings(APIAUTH=apiauth_settings(FAILED_AUTH_LIMITS=None))
    def test_can_be_disabled(self) -> None:
        for _ in range(25):
            assert get("apk_wrong").status_code == 401


class TestRedisDown:
    @override_settings(APIAUTH={**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "open"})
    def test_fail_open(self, _redis: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
        from apiauth.throttling import limiter

        _key, raw = make_key()
        assert get(raw).status_code == 200
        before = limiter.failures_open
        _redis.stop()
        try:
            with caplog.at_level(logging.WARNING, logger="apiauth.throttling"):
                for _ in range(15):
                    started = time.monotonic()
                    response = get(raw)
                    assert response.status_code == 200
                    assert "X-RateLimit-Limit" not in response
                    assert time.monotonic() - started < 1.5
            assert limiter.failures_open - before == 15
            # One warning for the fifteen: an outage is not a log line per request.
            assert caplog.text.count("store unavailable") == 1
            assert "rate limiting skipped for 1 request(s)" in caplog.text
            assert get("apk_wrong").status_code == 401  # failures stay 401s
        finally:
            _redis.start()

    @override_settings(
        APIAUTH=apiauth_settings(RATELIMIT_FAILURE_MODE="closed", RATELIMIT_BREAKER_SECONDS=0.5)
    )
    def test_fail_closed_then_recover(self, _redis: RedisServer) -> None:
        _key, raw = make_key()
        assert get(raw).status_code == 200
        _redis.stop()
        try:
            started = time.monotonic()
            response = get(raw)
            assert time.monotonic() - started < 1.5
            assert response.status_code == 503
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["code"] == "rate_limit_unavailable"
            assert response["Retry-After"] == "1"
            started = time.monotonic()
            assert get(raw).status_code == 503  # breaker open: no connect attempt
            assert time.monotonic() - started < 0.2
        finally:
            _redis.start()
        time.sleep(0.6)
        response = get(raw)
        assert response.status_code == 200
        # The test server keeps no data across restarts: the bucket starts full again.
        assert response["X-RateLimit-Remaining"] == "9"


class TestRefusals:
    def test_every_refusal_is_decided_by_the_store(self, _redis: RedisServer) -> None:
        _key, raw = make_key()
        exhaust(raw)
        sent = top_level_commands(_redis.client(), lambda: [get(raw) for _ in range(3)])
        assert sent == {"cmdstat_evalsha": 3}

    def test_a_reset_takes_effect_at_once(self, _redis: RedisServer) -> None:
        key, raw = make_key()
        exhaust(raw)
        assert get(raw).status_code == 429
        # Another worker's reset: only the store changes; this worker is not told.
        from apiauth.store import get_store
        from apiauth.store.keys import key_for
        from apiauth.throttling.limiter import identity

        tag = key_for(identity(key.to_credential(), None, None), "")
        # Its two limits; never its cached copy's version token.
        assert get_store().reset(tag[: tag.rindex("}") + 1]) == 2
        response = get(raw)
        assert response.status_code == 200
        assert response["X-RateLimit-Remaining"] == "9"

    def test_a_cheaper_request_is_decided_afresh(self) -> None:
        _key, raw = make_key()
        for _ in range(6):
            get(raw)
        post = APIClient().post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        assert post.status_code == 429
        assert get(raw).status_code == 200


class TestConfigurationDrift:
    def test_unknown_plan_falls_back_to_the_default(self, caplog: pytest.LogCaptureFixture) -> None:
        key, raw = make_key(plan="pro")
        plans = {k: v for k, v in settings.APIAUTH["PLANS"].items() if k != "pro"}
        with override_settings(APIAUTH=apiauth_settings(PLANS=plans)):
            response = get(raw)
        assert response["X-RateLimit-Limit"] == "10"
        assert "unknown plan 'pro'" in caplog.text and key.public_id in caplog.text

    def test_broken_overrides_keep_the_plan(self, caplog: pytest.LogCaptureFixture) -> None:
        key, raw = make_key()
        APIKey.objects.filter(pk=key.pk).update(rate_limits={"burst": "lots"})
        response = get(raw)
        assert response.status_code == 200
        assert response["X-RateLimit-Limit"] == "10"
        assert caplog.messages == [
            f"credential {key.public_id}: rate-limit overrides ignored: "
            "burst must be a whole number between 1 and 1000000000."  # the parser's words
        ]

    def test_a_known_plan_is_not_reported(self, caplog: pytest.LogCaptureFixture) -> None:
        _key, raw = make_key(plan="pro")
        assert get(raw).status_code == 200
        assert not [r for r in caplog.records if r.name == "apiauth.throttling"]

    def test_an_unknown_plan_is_reported_in_these_words(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        key, raw = make_key(plan="pro")
        plans = {k: v for k, v in settings.APIAUTH["PLANS"].items() if k != "pro"}
        with override_settings(APIAUTH=apiauth_settings(PLANS=plans)):
            get(raw)
        assert f"credential {key.public_id} names unknown plan 'pro'" in caplog.messages

    def test_no_plan_at_all_means_no_limits(self, caplog: pytest.LogCaptureFixture) -> None:
        """Neither the key's plan nor a default plan exists: nothing to apply, nothing to
        complain about beyond the unknown plan."""
        key, raw = make_key(plan="pro")
        with override_settings(APIAUTH=apiauth_settings(PLANS={}, DEFAULT_PLAN=None)):
            response = get(raw)
        assert response.status_code == 200 and "X-RateLimit-Limit" not in response
        assert caplog.messages == [f"credential {key.public_id} names unknown plan 'pro'"]


class TestKeptCalls:
    """A worker's copy of a key makes the same store call on every request to a view scope at
    one cost: the throttle keeps it (limits, keys, encoded command) while the copy stands."""

    def kept(self) -> list[Any]:
        from apiauth.cache import key_cache
        from apiauth.conf import conf
        from apiauth.throttling.throttle import CALLS

        (entry,) = key_cache.entries.values()
        calls: dict[Any, tuple[Any, Any]] = conf.derive(dict, key=CALLS)
        return [call for check, call in calls.values() if check is entry.check]

    def test_one_call_per_scope_and_cost_and_every_request_still_debits(self) -> None:
        _key, raw = make_key()
        first = int(get(raw)["X-RateLimit-Remaining"])
        assert [int(get(raw)["X-RateLimit-Remaining"]) for _ in range(2)] == [first - 1, first - 2]
        (ping,) = self.kept()
        assert ping.encoded is not None and ping.cost == 1
        client = APIClient()
        assert client.get("/v1/orders", HTTP_X_API_KEY=raw).status_code == 200
        created = client.post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        assert created.status_code == 201
        assert '"orders";r=14' in created["RateLimit"]  # 20, less 1, less the POST's 5
        calls = self.kept()
        assert len(calls) == 3 and calls[0] is ping
        assert {(call.cost, len(call.limits)) for call in calls} == {(1, 2), (1, 3), (5, 3)}

    def test_the_calls_are_forgotten_with_the_settings(self) -> None:
        _key, raw = make_key()
        assert get(raw)["X-RateLimit-Limit"] == "10"
        plans = {"free": {"rate": "10/hour", "burst": 4}}
        with override_settings(APIAUTH=apiauth_settings(PLANS=plans)):
            assert get(raw)["X-RateLimit-Limit"] == "4"
        assert get(raw)["X-RateLimit-Limit"] == "10"

    def test_a_throttle_whose_limits_read_the_request_is_asked_each_time(self) -> None:
        from rest_framework.request import Request
        from rest_framework.response import Response
        from rest_framework.test import APIRequestFactory
        from rest_framework.views import APIView

        from apiauth.authentication import APIKeyAuthentication
        from apiauth.throttling import TokenBucketThrottle
        from apiauth.throttling.limiter import RESULT_ATTR, plan_key_names
        from apiauth.throttling.rates import parse_limits

        class PerRequest(TokenBucketThrottle):
            def get_limits(self, request: Request, view: Any) -> tuple[list[Any], list[str]]:
                burst = int(request._request.META.get("HTTP_X_BURST", "5"))
                limits = list(parse_limits({"rate": "1/hour", "burst": burst}))
                return limits, plan_key_names(limits)

        class View(APIView):
            authentication_classes = [APIKeyAuthentication]
            permission_classes: list[Any] = []
            throttle_classes = [PerRequest]

            def get(self, request: Request) -> Response:
                return Response({})

        _key, raw = make_key()
        view, factory = View.as_view(), APIRequestFactory()
        for burst in (7, 3, 7):
            request = factory.get("/", HTTP_X_API_KEY=raw, HTTP_X_BURST=str(burst))
            assert view(request).status_code == 200
            (state,) = getattr(request, RESULT_ATTR).decision.states
            assert state.limit.capacity == burst
