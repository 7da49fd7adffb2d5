"""The Redis backend against the real redis-server: parity, atomicity, cost, resilience."""

from __future__ import annotations

import dataclasses
import gc
import multiprocessing
import select
import threading
import time
from typing import Any

import pytest
import redis
from django.test import override_settings

from apiauth.store import (
    Call,
    Check,
    ClaimTaken,
    LocalStore,
    MarksUnloaded,
    RedisStore,
    StaleCredential,
    TokenRevoked,
    get_store,
    lua,
)
from apiauth.throttling.rates import Limit
from tests.conftest import RedisServer
from tests.utils import top_level_commands

SECOND = 1_000_000
SLOW = Limit("burst", "bucket", 50, interval_us=3600 * SECOND)  # refill is negligible in a test
DAY = Limit("day", "quota", 30, window_s=86400)


def backend_for(server: RedisServer) -> RedisStore:
    return RedisStore(server.client())


class TestParity:
    def test_same_decisions_as_the_python_maths(self, _redis: RedisServer) -> None:
        remote, local = backend_for(_redis), LocalStore()
        limits = [Limit("burst", "bucket", 7, interval_us=3600 * SECOND), DAY]
        for cost in [1, 2, 1, 3, 1, 1, 5, 1, 1, 2, 9, 1]:
            a = remote.evaluate(["rl:{p}:b", "rl:{p}:q"], limits, cost)
            b = local.evaluate(["rl:{p}:b", "rl:{p}:q"], limits, cost)
            assert a.allowed == b.allowed
            assert [s.remaining for s in a.states] == [s.remaining for s in b.states]
            assert [s.retry_us > 0 for s in a.states] == [s.retry_us > 0 for s in b.states]

    def test_peek_does_not_debit(self, _redis: RedisServer) -> None:
        remote = backend_for(_redis)
        for _ in range(3):
            decision = remote.evaluate(["rl:{p}:b"], [SLOW], 1, debit=False)
            assert decision.states[0].remaining == 50


class TestCost:
    def test_one_command_per_decision_whatever_the_limits(self, _redis: RedisServer) -> None:
        remote, client = backend_for(_redis), _redis.client()
        remote.evaluate(["rl:{c}:warm"], [SLOW], 1)  # loads the script once
        for count in (1, 2, 5):
            limits = [Limit(f"l{i}", "bucket", 50, interval_us=SECOND) for i in range(count)]
            keys = [f"rl:{{c}}:{i}" for i in range(count)]
            sent = top_level_commands(client, lambda k=keys, x=limits: remote.evaluate(k, x, 1))
            assert sent == {"cmdstat_evalsha": 1}
        stats = client.info("commandstats")
        assert "cmdstat_script" not in stats  # no SCRIPT EXISTS / LOAD round trips

    def test_memory_per_bucket_is_small_and_independent_of_the_limit(
        self, _redis: RedisServer
    ) -> None:
        remote, client = backend_for(_redis), _redis.client()
        sizes = []
        for capacity in (10, 100_000, 10**9):
            key = "rl:{k0123456789abcdef0123456789abcdef}:burst"
            limit = Limit("burst", "bucket", capacity, interval_us=SECOND)
            client.delete(key)
            remote.evaluate([key], [limit], 1)
            sizes.append(client.memory_usage(key))
        assert all(size is not None and size < 100 for size in sizes), sizes
        assert len(set(sizes)) == 1

    def test_keys_expire_when_the_bucket_is_full_again(self, _redis: RedisServer) -> None:
        remote, client = backend_for(_redis), _redis.client()
        remote.evaluate(["rl:{e}:b"], [Limit("b", "bucket", 5, interval_us=SECOND)], 3)
        ttl = client.pttl("rl:{e}:b")
        assert 2900 <= ttl <= 3000
        remote.evaluate(["rl:{e}:q"], [DAY], 1)
        assert 0 < client.pttl("rl:{e}:q") <= 86400 * 1000


class TestEncoding:
    def test_commands_are_encoded_in_resp(self) -> None:
        from apiauth.store.connections import _pack

        parts = ["SET", "k\u00e9", b"1", "NX", "PX", 250]
        expected = b"*6\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$1\r\n1\r\n$2\r\nNX\r\n"
        expected += b"$2\r\nPX\r\n$3\r\n250\r\n"
        assert _pack(parts) == expected
        assert _pack(list(parts)) == expected  # remembered: the same bytes again

    def test_the_encoded_commands_memo_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from apiauth.store import connections

        monkeypatch.setattr(connections, "MAX_PACKED", 3)
        monkeypatch.setattr(connections, "_packed", {})
        for i in range(10):
            assert connections._pack(["GET", f"k{i}"]).endswith(f"k{i}\r\n".encode())
            assert len(connections._packed) <= 3

    def test_a_clients_kind_is_remembered_for_that_client_only(self) -> None:
        """Whether a client is a cluster client is remembered for the last one asked about:
        asking about another client asks again."""
        from redis.cluster import RedisCluster

        from apiauth.store.connections import is_cluster_client

        plain = redis.Redis()
        cluster = object.__new__(RedisCluster)  # the class is what counts, not a live cluster
        assert is_cluster_client(cluster) is True
        assert is_cluster_client(plain) is False
        assert is_cluster_client(plain) is False
        assert is_cluster_client(cluster) is True


class TestAtomicity:
    def test_threads_admit_exactly_the_burst(self, _redis: RedisServer) -> None:
        admitted: list[bool] = []
        lock = threading.Lock()

        def worker() -> None:
            remote = backend_for(_redis)  # a connection of its own
            for _ in range(20):
                allowed = remote.evaluate(["rl:{t}:b"], [SLOW], 1).allowed
                with lock:
                    admitted.append(allowed)

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(admitted) == 160 and sum(admitted) == 50

    def test_processes_admit_exactly_the_burst(self, _redis: RedisServer) -> None:
        context = multiprocessing.get_context("fork")
        queue: Any = context.Queue()
        workers = [
            context.Process(target=_process_worker, args=(_redis.port, queue)) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        counts = [queue.get(timeout=30) for _ in workers]
        for worker in workers:
            worker.join(timeout=30)
        assert sum(counts) == 50


def _process_worker(port: int, queue: Any) -> None:
    client = redis.Redis(host="127.0.0.1", port=port)
    remote = RedisStore(client)
    queue.put(sum(remote.evaluate(["rl:{p}:b"], [SLOW], 1).allowed for _ in range(30)))


class TestResilience:
    def test_script_flush_mid_traffic(self, _redis: RedisServer) -> None:
        remote, client = backend_for(_redis), _redis.client()
        assert remote.evaluate(["rl:{f}:b"], [SLOW], 1).allowed
        client.script_flush()
        decision = remote.evaluate(["rl:{f}:b"], [SLOW], 1)
        assert decision.allowed and decision.states[0].remaining == 48
        assert client.script_exists(lua.SHA) == [True]

    def test_a_kept_call_is_encoded_once_and_survives_a_script_flush(
        self, _redis: RedisServer
    ) -> None:
        """A call kept across requests (a worker's copy) carries its encoded command; after a
        restart or ``SCRIPT FLUSH`` it is sent as ``EVAL`` once, then as ``EVALSHA`` again."""
        remote, client = backend_for(_redis), _redis.client()
        client.set("rl:{c}:cred", "token")
        call = Call(("rl:{c}:b",), (SLOW,), 1, check=Check(key="rl:{c}:cred", token="token"))
        assert remote.decide(call).allowed
        encoded = call.encoded
        assert encoded is not None and encoded.packed.startswith(b"*")
        client.script_flush()
        assert remote.decide(call).states[0].remaining == 48
        assert call.encoded is encoded
        assert client.script_exists(lua.CHECKED_SHA) == [True]
        client.set("rl:{c}:cred", "another")  # the copy's token is gone: stale
        with pytest.raises(StaleCredential):
            remote.decide(call)

    def test_a_call_that_names_the_servers_epoch_is_encoded_each_time(
        self, _redis: RedisServer
    ) -> None:
        """A token's revocation marks are read under the server's epoch, which is the
        connection's: such a call is never kept encoded."""
        remote = backend_for(_redis)
        check = Check(key="rl:{m}:cred", token="", marks=("before",), revocations="rl:{m}:revoked")
        call = Call(("rl:{m}:b",), (SLOW,), 1, check=check)
        with pytest.raises(MarksUnloaded):
            remote.decide(call)
        assert call.encoded is None

    def test_reset_deletes_one_identitys_limits_only(self, _redis: RedisServer) -> None:
        remote, client = backend_for(_redis), _redis.client()
        limits = ["rl:{x*1}:burst", "rl:{x*1}:q:day", "rl:{x*1}:s:orders:burst"]
        remote.evaluate(limits, [SLOW, DAY, SLOW], 1)
        remote.evaluate(["rl:{x*2}:burst"], [SLOW], 1)
        kept = ["rl:{x*1}:cred", "rl:{x*1}:revoked", "rl:{x*1}:jwt:before", "rl:{x*1}:other"]
        for key in kept:
            client.set(key, "1")
        assert remote.reset("rl:{x*1}") == 3
        assert client.exists(*limits) == 0
        assert client.exists(*kept) == len(kept)
        assert client.exists("rl:{x*2}:burst") == 1
        assert remote.reset("rl:{nothing}") == 0

    @override_settings(APIAUTH={"RATELIMIT_BREAKER_SECONDS": 0.3})
    def test_breaker_opens_on_failure_and_recovers(self, _redis: RedisServer) -> None:
        from apiauth.store import StoreUnavailable

        remote = get_store()
        assert isinstance(remote, RedisStore)
        assert remote.evaluate(["rl:{b}:b"], [SLOW], 1).allowed
        _redis.stop()
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                remote.evaluate(["rl:{b}:b"], [SLOW], 1)
            assert time.monotonic() - started < 2
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="breaker"):
                remote.evaluate(["rl:{b}:b"], [SLOW], 1)
            assert time.monotonic() - started < 0.05
            with pytest.raises(StoreUnavailable):
                remote.reset("rl:{b}")
        finally:
            _redis.start()
        time.sleep(0.35)
        assert remote.evaluate(["rl:{b}:b"], [SLOW], 1).allowed
        assert remote.breaker.failures == 1


class TestThreadConnections:
    """Each thread keeps one pooled connection for the limiter (no check-out per request)."""

    @pytest.mark.parametrize("readiness", ["poll", "select"])
    def test_a_connection_the_server_closed_while_idle_is_replaced(
        self, _redis: RedisServer, readiness: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        if readiness == "select":  # as on Windows, which has no poll()
            monkeypatch.delattr(select, "poll")
        remote = backend_for(_redis)
        assert remote.evaluate(["rl:{k}:b"], [SLOW], 1).allowed
        admin = _redis.client()
        # Twice: the second close is seen on the socket that replaced the first.
        for remaining in (48, 47):
            assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
            decision = remote.evaluate(["rl:{k}:b"], [SLOW], 1)
            assert decision.allowed and decision.states[0].remaining == remaining
        assert remote.breaker.failures == 0

    def test_a_stray_reply_is_never_read_as_the_next_answer(self, _redis: RedisServer) -> None:
        remote = backend_for(_redis)
        remote.evaluate(["rl:{s}:b"], [SLOW], 1)
        connection = remote.connections.get(None)
        connection.send_command("PING")  # answered, never read
        time.sleep(0.05)
        decision = remote.evaluate(["rl:{s}:b"], [SLOW], 1)
        assert decision.allowed and decision.states[0].remaining == 48

    def test_the_connection_is_closed_when_its_thread_ends(self, _redis: RedisServer) -> None:
        remote = backend_for(_redis)
        results: list[bool] = []
        connections: list[Any] = []

        def worker() -> None:
            results.append(remote.evaluate(["rl:{r}:b"], [SLOW], 1).allowed)
            connections.append(remote.connections._pinned.connections[""])

        for _ in range(3):
            thread = threading.Thread(target=worker)
            thread.start()
            thread.join()
            del thread
            gc.collect()
            assert connections[-1]._sock is None  # closed with its thread
        assert results == [True, True, True]
        assert len({id(connection) for connection in connections}) == 3

    def test_a_forked_child_never_shares_the_parents_connection(self, _redis: RedisServer) -> None:
        remote, admin = backend_for(_redis), _redis.client()
        assert remote.evaluate(["rl:{f}:b"], [SLOW], 1).allowed  # the parent's connection

        def connections_made() -> int:
            return int(admin.info("stats")["total_connections_received"])

        before = connections_made()
        context = multiprocessing.get_context("fork")
        queue: Any = context.Queue()
        child = context.Process(target=_forked_worker, args=(remote, queue))
        child.start()
        parent = [remote.evaluate(["rl:{f}:b"], [SLOW], 1).allowed for _ in range(20)]
        counted = queue.get(timeout=30)
        child.join(timeout=30)
        assert all(parent) and counted == 20
        assert connections_made() == before + 1  # the child's own
        assert remote.evaluate(["rl:{f}:b"], [SLOW], 1).states[0].remaining == 50 - 42

    def test_claims_go_out_on_the_threads_connection(self, _redis: RedisServer) -> None:
        remote, admin = backend_for(_redis), _redis.client()
        assert remote.evaluate(["rl:{c}:b"], [SLOW], 1).allowed
        before = int(admin.info("stats")["total_connections_received"])
        assert remote.claim("rl:replay:c1", 60_000) is True
        assert remote.claim("rl:replay:c1", 60_000) is False
        assert remote.claim("rl:replay:c2", 1_500) is True
        assert 0 < admin.pttl("rl:replay:c2") <= 1_500
        assert 58_000 < admin.pttl("rl:replay:c1") <= 60_000
        assert int(admin.info("stats")["total_connections_received"]) == before


def _forked_worker(remote: RedisStore, queue: Any) -> None:
    queue.put(sum(remote.evaluate(["rl:{f}:b"], [SLOW], 1).allowed for _ in range(20)))


@override_settings(APIAUTH={"RATELIMIT_BACKEND": "local"})
def test_local_backend_is_chosen_by_setting() -> None:
    assert isinstance(get_store(), LocalStore)


class TestClaims:
    """A check's claim (a signed write's replay key): made once, after the version and before
    the limits, in the decision's own round trip; on Redis and in the local store alike."""

    @pytest.mark.parametrize("backend", ["redis", "local"])
    def test_made_once_whatever_the_limits_decide(self, _redis: RedisServer, backend: str) -> None:
        store = backend_for(_redis) if backend == "redis" else LocalStore()
        tight = Limit("burst", "bucket", 1, interval_us=3600 * SECOND)
        check = Check(key="rl:{c}:cred", token="", claim="rl:{c}:replay:a", claim_ttl_ms=60_000)
        assert store.evaluate(["rl:{c}:b"], [tight], 1, check=check).allowed
        with pytest.raises(ClaimTaken) as taken:
            store.evaluate(["rl:{c}:b"], [tight], 1, check=check)
        assert taken.value.key == "rl:{c}:replay:a"
        # Refused by the limits, a new claim is still made (a 429 spends its signature too).
        other = dataclasses.replace(check, claim="rl:{c}:replay:b")
        assert not store.evaluate(["rl:{c}:b"], [tight], 1, check=other).allowed
        with pytest.raises(ClaimTaken):
            store.evaluate(["rl:{c}:b"], [tight], 1, check=other)

    def test_not_made_for_a_stale_copy(self, _redis: RedisServer) -> None:
        store, client = backend_for(_redis), _redis.client()
        client.set("rl:{c}:cred", "v2")
        stale = Check(key="rl:{c}:cred", token="v1", claim="rl:{c}:replay:x", claim_ttl_ms=60_000)
        with pytest.raises(StaleCredential):
            store.evaluate(["rl:{c}:b"], [SLOW], 1, check=stale)
        assert client.get("rl:{c}:replay:x") is None  # authenticated again, it may claim
        fresh = dataclasses.replace(stale, token="v2")
        assert store.evaluate(["rl:{c}:b"], [SLOW], 1, check=fresh).allowed
        assert 59_000 < client.pttl("rl:{c}:replay:x") <= 60_000

    def test_with_revocation_marks_and_no_limits(self, _redis: RedisServer) -> None:
        """The claim's key comes after the marks' hash; the epoch keeps its place."""
        store, client = backend_for(_redis), _redis.client()
        lineage = "0" * 32
        assert store.load_marks(f"rl:{{k{lineage}}}:revoked", lambda: {"old": 1.0}, 60_000)
        check = Check(
            key=f"rl:{{k{lineage}}}:cred",
            token="",
            marks=("old",),
            issued_at=2.0,
            revocations=f"rl:{{k{lineage}}}:revoked",
            lineage=lineage,
            claim=f"rl:{{k{lineage}}}:replay:m",
            claim_ttl_ms=5_000,
        )
        assert store.evaluate([], [], 1, check=check).allowed
        assert client.exists(f"rl:{{k{lineage}}}:replay:m")
        with pytest.raises(ClaimTaken):
            store.evaluate([], [], 1, check=check)
        with pytest.raises(TokenRevoked):  # a mark still wins over the claim
            store.evaluate([], [], 1, check=dataclasses.replace(check, issued_at=0.5))
