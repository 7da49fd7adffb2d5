"""The Lua script and the Python maths are one algorithm: property tests drive both with the
same random traffic and require the same decisions to the µs."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from apiauth.store import LocalStore, lua
from apiauth.store.redis import _argv
from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit
from tests.conftest import RedisServer

SECOND = 1_000_000

buckets = st.builds(
    lambda capacity, interval: Limit("b", "bucket", capacity, interval_us=interval),
    st.integers(1, 20),
    st.integers(1, 10 * SECOND),
)
quotas = st.builds(
    lambda capacity, window: Limit("q", "quota", capacity, window_s=window),
    st.integers(1, 30),
    st.sampled_from([1, 7, 60, 3600, 86400]),
)
# A request: how far the clock moves first (sometimes across windows), its cost, and whether
# it debits or only peeks.
requests = st.tuples(
    st.one_of(st.integers(0, 3), st.integers(0, 2 * SECOND), st.integers(0, 100_000 * SECOND)),
    st.integers(1, 6),
    st.booleans(),
)


class FrozenClockLua:
    """The production script with ``TIME`` replaced by the test's clock and keys kept until
    the test ends (their expiry is real time, the clock is not; an expired value never
    matters to the maths, which the Python side shows)."""

    clock = "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) * 1000000 + tonumber(t[2])"
    expiry = "redis.call('SET', KEYS[k0 + i], values[i], 'PX', ttl)"

    def __init__(self, server: RedisServer) -> None:
        assert self.clock in lua.SCRIPT and self.expiry in lua.SCRIPT
        self.script = lua.SCRIPT.replace(self.clock, "local now = tonumber(ARGV[#ARGV])").replace(
            self.expiry, "redis.call('SET', KEYS[k0 + i], values[i])"
        )
        self.client = server.client()

    def evaluate(
        self, keys: list[str], limits: list[Limit], cost: int, debit: bool, now_us: int
    ) -> gcra.Decision:
        argv = [*_argv(limits, cost, debit), now_us]
        result = self.client.eval(self.script, len(keys), *keys, *argv)
        values = [int(v) for v in result.split()]
        states = tuple(
            gcra.LimitState(limit, *values[1 + i * 3 : 4 + i * 3]) for i, limit in enumerate(limits)
        )
        return gcra.Decision(bool(values[0]), states)


@pytest.fixture(scope="module")
def frozen(redis_server: RedisServer) -> FrozenClockLua:
    return FrozenClockLua(redis_server)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    limits=st.lists(st.one_of(buckets, quotas), min_size=1, max_size=3),
    start=st.one_of(
        st.integers(1_700_000_000 * SECOND, 1_800_000_000 * SECOND),
        # A few µs around midnight UTC, a boundary of every window but 7 s: off-by-ones show.
        st.builds(
            lambda day, at: day * 86400 * SECOND + at,
            st.integers(19_700, 20_800),
            st.integers(-3, 3),
        ),
    ),
    traffic=st.lists(requests, min_size=1, max_size=40),
)
@example(  # the µs before midnight, then midnight: a window's last and first µs
    limits=[Limit("q", "quota", 2, window_s=86400)],
    start=20_000 * 86400 * SECOND - 1,
    traffic=[(0, 1, True), (1, 1, True), (0, 1, True)],
)
def test_lua_equals_python(
    frozen: FrozenClockLua,
    limits: list[Limit],
    start: int,
    traffic: list[tuple[int, int, bool]],
) -> None:
    tag = uuid.uuid4().hex
    keys = [f"rl:{{{tag}}}:{i}" for i in range(len(limits))]
    now = [start]
    python = LocalStore(clock=lambda: now[0])
    for step, cost, debit in traffic:
        now[0] += step
        expected = python.evaluate(keys, limits, cost, debit=debit)
        assert frozen.evaluate(keys, limits, cost, debit, now[0]) == expected


def test_the_properties_reach_every_path(frozen: FrozenClockLua) -> None:
    """The strategies above do reach refusals, exhausted quotas and crossed windows."""
    day = Limit("q", "quota", 2, window_s=86400)
    burst = Limit("b", "bucket", 2, interval_us=SECOND)
    keys = [f"rl:{{{uuid.uuid4().hex}}}:{i}" for i in range(2)]
    boundary = 86400 * SECOND * 20_000
    t0 = boundary - 10  # 10 µs before midnight UTC
    results = [frozen.evaluate(keys, [day, burst], 1, True, t0 + i) for i in range(3)]
    assert [r.allowed for r in results] == [True, True, False]  # the quota is exhausted
    refused = results[2]
    assert refused.states[0].retry_us == 8  # the day ends 8 µs later ...
    assert refused.states[1].retry_us == SECOND - 2  # ... the burst's token comes later
    assert refused.retry_after_us == SECOND - 2 and refused.blocking == refused.states[1]
    crossed = frozen.evaluate(keys, [day, burst], 1, True, boundary + 2 * SECOND)
    assert crossed.allowed and crossed.states[0].remaining == 1  # a new day's quota
