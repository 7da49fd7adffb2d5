"""The rate limiter's edges against the real redis-server: odd keys, costs, prefixes, resets,
and what the store answers when it cannot."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import override_settings
from rest_framework.test import APIClient

from apiauth.models import APIKey
from apiauth.store import LocalStore, RedisStore, get_store
from apiauth.store.keys import key_for
from apiauth.throttling import gcra
from apiauth.throttling.limiter import identity
from apiauth.throttling.rates import (
    MAX_COUNT,
    MAX_PERIOD,
    InvalidLimit,
    Limit,
    parse_limits,
    parse_rate,
)
from tests.conftest import RedisServer
from tests.factories import make_key

pytestmark = pytest.mark.django_db

SECOND = 1_000_000


def apiauth_settings(**overrides: Any) -> dict[str, Any]:
    return {**settings.APIAUTH, **overrides}


def get(raw: str | None = None, path: str = "/v1/ping", ip: str = "127.0.0.1") -> Any:
    headers: dict[str, Any] = {"REMOTE_ADDR": ip}
    if raw is not None:
        headers["HTTP_X_API_KEY"] = raw
    return APIClient().get(path, **headers)


class TestBounds:
    """Every number is bounded where it is validated, so the Lua maths stays exact."""

    @pytest.mark.parametrize(
        "spec",
        [
            {"rate": "1/99999999999999999999s"},
            {"quotas": ["1/99999999999999day"]},
            {"rate": "1/100000000day"},
            {"quotas": ["1/367day"]},
            {"rate": "1000000001/day"},
            {"rate": "2000000/s"},  # more than one token per µs
            {"rate": "1/s", "burst": MAX_COUNT},  # 31 years to refill
            {"rate": "1/day", "burst": 367},
            {"rate": "9" * 5000 + "/s"},
            {"rate": "١٠/s"},  # Arabic-Indic digits are not ASCII digits
        ],
    )
    def test_absurd_values_are_refused(self, spec: dict[str, Any]) -> None:
        with pytest.raises(InvalidLimit):
            parse_limits(spec)

    def test_the_largest_accepted_values(self) -> None:
        assert parse_rate(f"{MAX_COUNT}/366day").count == MAX_COUNT
        slowest = parse_limits({"rate": "1/366day"})[0]
        assert slowest.interval_us == MAX_PERIOD * SECOND
        fastest = parse_limits({"rate": "1000000/s"})[0]
        assert fastest.interval_us == 1
        assert parse_limits({"rate": "1000000/s", "burst": MAX_COUNT})[0].capacity == MAX_COUNT
        assert parse_limits({"quotas": [f"{MAX_COUNT}/366day"]})[0].window_s == MAX_PERIOD

    def test_interval_is_rounded_to_the_nearest_microsecond(self) -> None:
        assert parse_limits("7/s")[0].interval_us == 142_857
        assert parse_limits("3/s")[0].interval_us == 333_333
        assert parse_limits("2/3s")[0].interval_us == 1_500_000
        assert parse_limits("6/s")[0].interval_us == 166_667

    @pytest.mark.parametrize(
        "spec",
        [{"rate": "1/99999999999999999999s"}, {"quotas": ["1/99999999999999day"]}],
    )
    def test_model_validation_refuses_them(self, spec: dict[str, Any]) -> None:
        with pytest.raises(ValidationError) as excinfo:
            make_key(rate_limits=spec)
        assert "rate_limits" in excinfo.value.message_dict
        assert not APIKey.objects.exists()

    def test_the_extremes_are_exact_in_redis(self, _redis: RedisServer) -> None:
        """The slowest bucket, the fastest one and the largest quota: Lua equals Python to
        the µs, with both clocks at the same instant."""
        limits = [
            parse_limits({"rate": "1/366day", "burst": 1}, name="slow")[0],
            parse_limits({"rate": "1000000/s", "burst": MAX_COUNT}, name="fast")[0],
            parse_limits({"quotas": [f"{MAX_COUNT}/366day"]})[0],
        ]
        keys = ["rl:{x}:slow", "rl:{x}:fast", "rl:{x}:q"]
        lua = FrozenClockScript(_redis)
        now = [1_790_000_000 * SECOND + 123_457]
        local = LocalStore(clock=lambda: now[0])
        decisions = []
        for step in [0, 1, MAX_PERIOD * SECOND - 2, 1, 1]:
            now[0] += step
            remote = lua.evaluate(keys, limits, 1, now[0])
            assert remote == local.evaluate(keys, limits, 1)
            decisions.append(remote)
        assert [d.allowed for d in decisions] == [True, False, False, True, False]
        full = MAX_PERIOD * SECOND
        assert [d.retry_after_us for d in decisions] == [0, full - 1, 1, 0, full - 1]
        assert decisions[3].states[0].reset_us == MAX_PERIOD * SECOND
        # From the third step on it is a new (epoch-aligned) 366-day quota window: its count
        # restarted, and refused requests debit nothing.
        m = MAX_COUNT
        assert [d.states[2].remaining for d in decisions] == [m - 1, m - 1, m, m - 1, m - 1]


class FrozenClockScript:
    """The production script with Redis's ``TIME`` replaced by a clock the test sets."""

    def __init__(self, server: RedisServer) -> None:
        from apiauth.store import lua

        clock = (
            "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])"
        )
        assert clock in lua.SCRIPT
        self.script = lua.SCRIPT.replace(clock, "local now = tonumber(ARGV[#ARGV])")
        self.client = server.client()

    def evaluate(
        self, keys: list[str], limits: list[Limit], cost: int, now_us: int
    ) -> gcra.Decision:
        from apiauth.store.redis import _argv

        result = self.client.eval(self.script, len(keys), *keys, *_argv(limits, cost, True), now_us)
        values = [int(v) for v in result.split()]
        states = tuple(
            gcra.LimitState(limit, *values[1 + i * 3 : 4 + i * 3]) for i, limit in enumerate(limits)
        )
        return gcra.Decision(bool(values[0]), states)


class TestStoreErrors:
    """A script or data error fails one decision; only an unreachable server opens the breaker."""

    def corrupt(self, _redis: RedisServer, raw: str) -> None:
        key = APIKey.objects.get_from_key(raw)
        name = key_for(identity(key.to_credential(), None, None), "burst")
        _redis.client().hset(name, "not", "a number")  # GET on it: WRONGTYPE

    def test_fail_open_for_that_request_only(
        self, _redis: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        _bad, bad_raw = make_key(name="bad")
        _good, good_raw = make_key(name="good")
        self.corrupt(_redis, bad_raw)
        with caplog.at_level(logging.ERROR, logger="apiauth.throttling"):
            assert get(bad_raw).status_code == 200
        assert "breaker stays closed" in caplog.text and "WRONGTYPE" in caplog.text
        # A broken key used again and again does not flood the log.
        caplog.clear()
        with caplog.at_level(logging.ERROR, logger="apiauth.throttling"):
            for _ in range(5):
                assert get(bad_raw).status_code == 200
        assert "WRONGTYPE" not in caplog.text
        backend = get_store()
        assert isinstance(backend, RedisStore) and not backend.breaker.is_open
        # Other keys are still limited, and the failed-auth lockout still counts.
        statuses = [get(good_raw).status_code for _ in range(11)]
        assert statuses == [200] * 10 + [429]
        assert get("apk_wrong", ip="192.0.2.1")["X-RateLimit-Remaining"] == "19"

    @override_settings(APIAUTH=apiauth_settings(RATELIMIT_FAILURE_MODE="closed"))
    def test_fail_closed_for_that_request_only(self, _redis: RedisServer) -> None:
        _bad, bad_raw = make_key(name="bad")
        _good, good_raw = make_key(name="good")
        self.corrupt(_redis, bad_raw)
        for _ in range(3):
            assert get(bad_raw).status_code == 503
            assert get(good_raw).status_code == 200
            assert get(path="/health").status_code == 200

    @override_settings(APIAUTH=apiauth_settings(RATELIMIT_BREAKER_SECONDS=30))
    def test_a_read_only_replica_opens_the_breaker(self, _redis: RedisServer) -> None:
        """Failover: the server answers READONLY to every write. That is an outage."""
        _key, raw = make_key()
        assert get(raw).status_code == 200
        client = _redis.client()
        client.execute_command("REPLICAOF", "127.0.0.1", "1")  # type: ignore[no-untyped-call]
        try:
            assert get(raw).status_code == 200  # failed open, and the breaker opened
            backend = get_store()
            assert isinstance(backend, RedisStore) and backend.breaker.is_open
        finally:
            client.execute_command("REPLICAOF", "NO", "ONE")  # type: ignore[no-untyped-call]


class TestQuotaWindows:
    """A counter is read only in the window it counts, whatever its key's expiry says."""

    def test_a_counter_outliving_its_window_is_not_honoured(self, _redis: RedisServer) -> None:
        key, raw = make_key(rate_limits={"quotas": ["1/day"]})
        name = key_for(identity(key.to_credential(), None, None), "q:day")
        seconds, _micro = _redis.client().time()
        yesterday = seconds // 86400 - 1
        # Yesterday's exhausted counter, still present (as in the first ms of a window).
        _redis.client().set(name, f"{yesterday}:1", px=60_000)
        response = get(raw)
        assert response.status_code == 200
        assert _redis.client().get(name) == f"{yesterday + 1}:1".encode()
        refused = get(raw)
        assert refused.status_code == 429
        assert refused.json()["limit"]["name"] == "day"

    def test_python_maths_at_the_boundary(self) -> None:
        now = [1_700_006_400 * SECOND - 1]  # one µs before a day boundary
        store = LocalStore(clock=lambda: now[0])
        day = Limit("day", "quota", 1, window_s=86400)
        assert store.evaluate(["q"], [day], 1).allowed
        refused = store.evaluate(["q"], [day], 1)
        assert not refused.allowed and refused.retry_after_us == 1
        now[0] += 1
        # The key may outlive its window by the ms rounding of the expiry: still not honoured.
        store.store["q"] = (store.store["q"][0], now[0] + 1000)
        assert store.evaluate(["q"], [day], 1).allowed

    def test_values_name_their_window(self) -> None:
        day = Limit("day", "quota", 5, window_s=86400)
        now = 3 * 86400 * SECOND + 7
        decision, updates = gcra.evaluate({"q": (2, 5)}, ["q"], [day], 1, now)
        assert decision.allowed and updates == {"q": (3, 1)}
        decision, updates = gcra.evaluate({"q": (3, 5)}, ["q"], [day], 1, now)
        assert not decision.allowed and updates == {}


class TestCostAboveCapacity:
    def test_refused_with_a_429_that_says_never(self, _redis: RedisServer) -> None:
        _key, raw = make_key(rate_limits={"burst": 5})
        with override_settings(APIAUTH=apiauth_settings(UNSAFE_METHOD_COST=6)):
            for _ in range(3):
                response = APIClient().post(
                    "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
                )
                assert response.status_code == 429
                assert "Retry-After" not in response
                body = response.json()
                assert body["code"] == "cost_exceeds_limit"
                assert body["limit"] == {"name": "burst", "quota": 5} and body["cost"] == 6
                assert "never" in body["detail"]
        # Nothing was debited.
        assert get(raw)["X-RateLimit-Remaining"] == "4"

    def test_a_cost_equal_to_the_burst_is_admitted(self) -> None:
        _key, raw = make_key(rate_limits={"burst": 5})
        response = APIClient().post(
            "/v1/orders", {"sku": "ABC-1", "quantity": 1}, format="json", HTTP_X_API_KEY=raw
        )
        assert response.status_code == 201
        assert response["X-RateLimit-Remaining"] == "0"
