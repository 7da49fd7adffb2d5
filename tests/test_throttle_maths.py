"""Bucket and quota maths with an injected clock (no Redis)."""

from __future__ import annotations

import math

import pytest

from apiauth.store import LocalStore
from apiauth.throttling import gcra
from apiauth.throttling.rates import (
    InvalidLimit,
    Limit,
    Rate,
    bucket,
    merge_specs,
    parse_limits,
    parse_rate,
    quota,
)

SECOND = 1_000_000


class Clock:
    def __init__(self, now: int = 1_700_000_000 * SECOND) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * SECOND)


def backend() -> tuple[LocalStore, Clock]:
    clock = Clock()
    return LocalStore(clock=clock), clock


def hit(store: LocalStore, limits: list[Limit], cost: int = 1) -> gcra.Decision:
    return store.evaluate([f"k{i}" for i in range(len(limits))], limits, cost)


class TestRates:
    @pytest.mark.parametrize(
        ("text", "count", "period"),
        [
            ("60/min", 60, 60),
            ("60/m", 60, 60),
            ("1000/day", 1000, 86400),
            ("10/s", 10, 1),
            ("5/10s", 5, 10),
            ("100/hours", 100, 3600),
            (" 7 / minute ", 7, 60),
        ],
    )
    def test_parse(self, text: str, count: int, period: int) -> None:
        assert parse_rate(text) == Rate(count, period)

    @pytest.mark.parametrize("text", ["", "60", "0/min", "-1/min", "60/fortnight", 60, None])
    def test_invalid(self, text: object) -> None:
        with pytest.raises(InvalidLimit):
            parse_rate(text)

    def test_parse_limits(self) -> None:
        limits = parse_limits({"rate": "60/min", "burst": 10, "quotas": ["1000/day"]})
        assert limits == (
            Limit("burst", "bucket", 10, interval_us=SECOND),
            Limit("day", "quota", 1000, window_s=86400),
        )
        assert parse_limits("30/min") == (Limit("burst", "bucket", 30, interval_us=2 * SECOND),)
        assert parse_limits({"quotas": ["5/10s"]})[0].name == "10s"

    @pytest.mark.parametrize(
        "spec",
        [
            [],
            {},
            {"burst": 5},
            {"rate": "1/s", "burst": 0},
            {"rate": "1/s", "burst": "5"},
            {"rate": "1/s", "burst": True},
            {"rate": "1/s", "quotas": "1/day"},
            {"rate": "1/s", "quotas": ["1/day", "2/day"]},
            {"rate": "1/s", "bust": 5},
        ],
    )
    def test_invalid_specs(self, spec: object) -> None:
        with pytest.raises(InvalidLimit):
            parse_limits(spec)

    def test_merge(self) -> None:
        assert merge_specs({"rate": "1/s", "burst": 5}, {"burst": 9}) == {
            "rate": "1/s",
            "burst": 9,
        }
        assert merge_specs(None, None) == {}

    def test_policy_window(self) -> None:
        assert bucket("b", parse_rate("60/min"), 10).policy_window == 10
        assert quota(parse_rate("1000/day")).policy_window == 86400


class TestBucket:
    limit = Limit("burst", "bucket", 10, interval_us=SECOND)  # 60/min, burst 10

    def test_burst_then_refusal(self) -> None:
        store, _clock = backend()
        results = [hit(store, [self.limit]) for _ in range(11)]
        assert [r.allowed for r in results] == [True] * 10 + [False]
        assert [r.states[0].remaining for r in results[:10]] == list(range(9, -1, -1))
        assert results[10].retry_after_us == SECOND
        assert results[10].blocking is not None

    def test_refill_and_partial_refill(self) -> None:
        store, clock = backend()
        for _ in range(10):
            hit(store, [self.limit])
        clock.advance(0.5)
        refused = hit(store, [self.limit])
        assert not refused.allowed and refused.retry_after_us == SECOND // 2
        clock.advance(0.5)
        assert hit(store, [self.limit]).allowed
        assert not hit(store, [self.limit]).allowed
        clock.advance(3.5)
        assert [hit(store, [self.limit]).allowed for _ in range(4)] == [True, True, True, False]

    def test_never_more_than_capacity_after_idle(self) -> None:
        store, clock = backend()
        hit(store, [self.limit])
        clock.advance(3600)
        assert sum(hit(store, [self.limit]).allowed for _ in range(20)) == 10

    def test_cost_greater_than_one(self) -> None:
        store, clock = backend()
        assert hit(store, [self.limit], cost=5).states[0].remaining == 5
        assert hit(store, [self.limit], cost=5).allowed
        refused = hit(store, [self.limit], cost=5)
        assert not refused.allowed and refused.retry_after_us == 5 * SECOND
        clock.advance(5)
        assert hit(store, [self.limit], cost=5).allowed

    def test_cost_over_capacity_is_never_admitted(self) -> None:
        # The throttle answers such a request before the maths (test_throttle_hardening);
        # the maths alone still never admits it.
        store, clock = backend()
        for _ in range(3):
            assert not hit(store, [self.limit], cost=11).allowed
            clock.advance(3600)

    def test_reset_is_time_until_full(self) -> None:
        store, _ = backend()
        assert hit(store, [self.limit], cost=3).states[0].reset_us == 3 * SECOND


class TestQuota:
    limit = Limit("day", "quota", 3, window_s=86400)

    def test_quota_and_window_reset(self) -> None:
        store, clock = backend()
        clock.now = 1_700_006_400 * SECOND - 10 * SECOND  # ten seconds before a UTC midnight
        assert [hit(store, [self.limit]).allowed for _ in range(4)] == [True] * 3 + [False]
        refused = hit(store, [self.limit])
        assert refused.retry_after_us == 10 * SECOND
        assert refused.states[0].remaining == 0
        clock.advance(10)
        assert hit(store, [self.limit]).allowed


class TestAllOrNothing:
    def test_refused_by_one_debits_none(self) -> None:
        store, _ = backend()
        roomy = Limit("burst", "bucket", 100, interval_us=SECOND)
        tight = Limit("day", "quota", 2, window_s=86400)
        hit(store, [roomy, tight])
        hit(store, [roomy, tight])
        refused = hit(store, [roomy, tight])
        assert not refused.allowed
        assert refused.states[0].remaining == 98  # the bucket was not debited
        assert refused.blocking is not None and refused.blocking.limit is tight
        assert refused.tightest is refused.blocking

    def test_tightest_is_fewest_left(self) -> None:
        store, _ = backend()
        wide = Limit("burst", "bucket", 100, interval_us=SECOND)
        narrow = Limit("day", "quota", 5, window_s=86400)
        decision = hit(store, [wide, narrow])
        assert decision.tightest is not None and decision.tightest.limit is narrow
        assert gcra.Decision(True, ()).tightest is None

    def test_tightest_breaks_ties_as_documented(self) -> None:
        """Refused: the latest to free, the first of equals; else the fewest left, then the
        latest whole, the first of equals."""
        a, b, c = (Limit(name, "bucket", 10, interval_us=SECOND) for name in "abc")
        state = gcra.LimitState

        def tightest(*states: gcra.LimitState) -> gcra.LimitState | None:
            return gcra.Decision(all(s.retry_us == 0 for s in states), states).tightest

        ok_a, ok_b = state(a, 1, 5, 0), state(b, 1, 9, 0)
        assert tightest(ok_a, ok_b) is ok_b  # as few left, whole later
        same = state(c, 1, 9, 0)
        assert tightest(ok_b, same) is ok_b  # the first of equals
        refused, later = state(b, 0, 5, 3), state(c, 0, 5, 7)
        assert tightest(ok_a, refused) is refused  # a refusal after an admitted limit
        assert tightest(refused, later, state(a, 0, 5, 7)) is later
        assert tightest(state(a, 0, 1, 0), refused) is refused  # fewer left does not win

    def test_peek_does_not_debit(self) -> None:
        store, _ = backend()
        limit = Limit("burst", "bucket", 2, interval_us=SECOND)
        for _ in range(3):
            assert store.evaluate(["k"], [limit], 1, debit=False).states[0].remaining == 2

    def test_reset(self) -> None:
        store, _ = backend()
        limit = Limit("burst", "bucket", 1, interval_us=SECOND)
        store.evaluate(["rl:{a}:burst"], [limit], 1)
        store.evaluate(["rl:{a}:cred"], [limit], 1)  # no limit's name: never reset
        assert not store.evaluate(["rl:{a}:burst"], [limit], 1).allowed
        assert store.reset("rl:{a}") == 1
        assert store.evaluate(["rl:{a}:burst"], [limit], 1).allowed
        assert not store.evaluate(["rl:{a}:cred"], [limit], 1).allowed


class TestMessages:
    """Operators read these in system checks and the admin: each says what to write instead."""

    @pytest.mark.parametrize(
        ("spec", "message"),
        [
            ("often", "'often' is not a rate: write it like '60/min' or '1000/day'."),
            ("5/fortnight", "'5/fortnight' is not a rate: write it like '60/min' or '1000/day'."),
            (
                "1" * 12 + "/s",
                "'111111111111/s': the numbers are too large.",
            ),
            ("0/min", "'0/min': the count must be between 1 and 1000000000."),
            ("1/367day", "'1/367day': the period must be between 1 second and 366 days."),
            ("1/0s", "'1/0s': the period must be between 1 second and 366 days."),
            ({"rate": "1/s", "burst": 0}, "burst must be a whole number between 1 and 1000000000."),
            ({"rate": "2000000/s"}, "a rate may grant at most 1000000 units per second."),
            (
                {"rate": "1/day", "burst": 400},
                "the bucket would take more than 366 days to refill: raise the rate or lower "
                "the burst.",
            ),
            (
                [],
                "a limit must be a rate string or a dict with 'rate', 'burst', 'quotas'.",
            ),
            (
                {"rate": "1/s", "brust": 5, "Z": 1},
                "unknown key(s) 'Z', 'brust': use rate, burst, quotas.",
            ),
            ({"burst": 5}, "'burst' needs a 'rate'."),
            ({"quotas": "1/day"}, "'quotas' must be a list of rates such as ['1000/day']."),
            ({"quotas": ["1/day", "2/day"]}, "two quotas share a period."),
            ({}, "a limit needs a 'rate' or 'quotas'."),
        ],
    )
    def test_exact(self, spec: object, message: str) -> None:
        with pytest.raises(InvalidLimit) as excinfo:
            parse_limits(spec)
        assert str(excinfo.value) == message

    def test_not_serialisable(self) -> None:
        spec = {"rate": object()}
        with pytest.raises(InvalidLimit) as excinfo:
            parse_limits(spec)
        assert str(excinfo.value) == f"{spec!r} is not a limit spec."


class TestBoundaries:
    """Each bound at its edge (mutation testing found these untested)."""

    def test_fastest_rate(self) -> None:
        assert parse_limits("1000000/s")[0].interval_us == 1
        with pytest.raises(InvalidLimit, match="at most 1000000 units per second"):
            parse_limits("1000001/s")
        assert parse_limits("2000000/2s")[0].interval_us == 1

    def test_slowest_refill_is_exact(self) -> None:
        # 7 tokens over 366 days: the interval rounds up by a fraction of a µs, the bound holds.
        assert parse_limits("7/366day")[0].capacity == 7
        with pytest.raises(InvalidLimit, match="more than 366 days to refill"):
            parse_limits({"rate": "7/366day", "burst": 8})

    def test_interval_rounds_half_up(self) -> None:
        for period in (1, 60, 3600, 86400):
            for count in range(1, 300):
                expected = math.floor(period * 1_000_000 / count + 0.5)
                assert parse_limits(f"{count}/{period}s")[0].interval_us == expected, (
                    count,
                    period,
                )

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("12345678901/s", "'12345678901/s': the numbers are too large."),
            ("1/12345678901s", "'1/12345678901s': the numbers are too large."),
            ("1/1234567890s", "'1/1234567890s': the period must be between 1 second and 366 days."),
            ("1" * 50 + "/s", f"{('1' * 50 + '/s')[:40]!r}: the numbers are too large."),
        ],
    )
    def test_digit_limits(self, text: str, message: str) -> None:
        with pytest.raises(InvalidLimit) as excinfo:
            parse_rate(text)
        assert str(excinfo.value) == message

    @pytest.mark.parametrize("quotas", [5, {"day": "1/day"}, None])
    def test_quotas_must_be_a_list(self, quotas: object) -> None:
        with pytest.raises(InvalidLimit) as excinfo:
            parse_limits({"quotas": quotas})
        assert str(excinfo.value) == "'quotas' must be a list of rates such as ['1000/day']."


def test_expiry_to_the_millisecond() -> None:
    from apiauth.throttling.gcra import expiry_ms
    from apiauth.throttling.rates import Limit

    bucket = Limit("b", "bucket", 5, interval_us=1_000_000)
    now = 1_000_000_000_000
    assert expiry_ms(bucket, now + 1_500, now) == 2  # rounded up: never a ms early
    assert expiry_ms(bucket, now + 2_000, now) == 2
    assert expiry_ms(bucket, now, now) == 1  # at least 1 ms
    assert expiry_ms(bucket, now - 5_000, now) == 1
    minute = Limit("m", "quota", 5, window_s=60)
    start = 60_000_000 * 1000  # a minute boundary
    assert expiry_ms(minute, (0, 1), start) == 60_000
    assert expiry_ms(minute, (0, 1), start + 59_999_500) == 1  # 0.5 ms left: 1
    assert expiry_ms(minute, (0, 1), start + 30_000_001) == 30_000
