"""The same product on a live Redis Cluster and behind a live Sentinel, through failovers.

Each test drives DRF views as a client would, with ``APIAUTH["REDIS_URL"]`` pointing at the
topology, and kills (``kill -9``) or demotes the primary mid-traffic. What must hold: limits are
exact while Redis serves, never unlimited while it fails over (the ``"local"`` failure mode,
each process its share), every worker is on the new primary within one breaker interval without
a restart, and no revoked token comes back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from apiauth.models import HMACCredential
from apiauth.store import RedisStore, get_store, reset_stores
from apiauth.store.keys import revocations_key
from apiauth.throttling import limiter
from tests.factories import make_hmac, make_key
from tests.topologies import Cluster, SentinelSetup, wait_for
from tests.utils import call, form, obtain, refused, send

pytestmark = pytest.mark.django_db

BREAKER = 0.5
SHARE = 2  # of the "free" plan's burst of 10, with five processes


def using(url: str) -> Any:
    return override_settings(
        APIAUTH={
            **settings.APIAUTH,
            "REDIS_URL": url,
            "RATELIMIT_BREAKER_SECONDS": BREAKER,
            "RATELIMIT_LOCAL_PROCESSES": 5,
        }
    )


@pytest.fixture
def on(request: pytest.FixtureRequest) -> Iterator[None]:
    """The product configured for the topology named by the test's ``topology`` fixture."""
    topology = request.getfixturevalue("topology")
    with using(topology.url):
        reset_stores()
        yield
    reset_stores()


def ping(raw: str) -> Any:
    return Client().get("/v1/ping", HTTP_X_API_KEY=raw)


def decided_by_redis() -> int:
    """How many decisions the store could not make so far (a counter that stops growing once
    every request is decided by Redis again)."""
    return limiter.failures_open


def traffic_through_a_failover(
    raw: str, failover: Any, promoted: Any, settle: float = 20.0
) -> dict[str, Any]:
    """Requests from one key before, during and after ``failover()``: how many were admitted,
    the slowest, how many the store could not decide, and how long after the promotion
    (``promoted()`` true) every request was decided by Redis again."""
    admitted, slowest = 0, 0.0
    for _ in range(3):
        assert ping(raw).status_code == 200
        admitted += 1
    initial = decided_by_redis()
    failover()
    started = time.monotonic()
    promoted_at = recovered_at = None
    while time.monotonic() - started < settle:
        before = time.monotonic()
        response = ping(raw)
        slowest = max(slowest, time.monotonic() - before)
        assert response.status_code in (200, 429), response.content
        admitted += response.status_code == 200
        if promoted_at is None and promoted():
            promoted_at = time.monotonic()
        if promoted_at is not None:
            failures = decided_by_redis()
            streak = [ping(raw) for _ in range(3)]
            admitted += sum(r.status_code == 200 for r in streak)
            if decided_by_redis() == failures:  # three in a row decided by Redis
                recovered_at = time.monotonic()
                break
        time.sleep(0.02)
    seen = {
        "admitted": admitted,
        "slowest": round(slowest, 3),
        "local": decided_by_redis() - initial,
        "promoted_after": promoted_at and round(promoted_at - started, 2),
        "following_after": recovered_at and promoted_at and round(recovered_at - promoted_at, 2),
    }
    # `pytest tests/test_store_topologies.py -s -k failover` prints what a failover costs
    # (docs/deployment.md quotes it).
    print(f"\nfailover: {seen}")
    return seen


def held(seen: dict[str, Any]) -> None:
    """Never unlimited: the burst, plus this process's share while it failed over; no request
    stalled in retries; every worker on the new primary within one breaker interval of the
    promotion (plus the sentinels' or the cluster's own propagation)."""
    assert seen["admitted"] <= 10 + SHARE, seen
    assert seen["slowest"] < 1.5, seen
    assert seen["following_after"] is not None, seen
    # The breaker interval, plus the sentinels' or the cluster's own propagation and a busy
    # CI machine's scheduling.
    assert seen["following_after"] <= BREAKER + 2.0, seen


# -- Redis Cluster -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


class TestCluster:
    @pytest.fixture
    def topology(self, shared_cluster: Cluster) -> Cluster:
        shared_cluster.flushall()
        return shared_cluster

    def test_the_store_is_a_cluster_client(self, topology: Cluster, on: None) -> None:
        store = get_store()
        assert isinstance(store, RedisStore) and not store.is_cluster  # not built yet
        assert store.claim("rl:replay:first", 1000) is True
        assert store.is_cluster

    def test_limits_are_exact_on_every_slot(self, topology: Cluster, on: None) -> None:
        masters: set[int] = set()
        failures = limiter.failures_open
        for _ in range(12):
            key, raw = make_key()
            codes = [ping(raw) for _ in range(12)]
            assert [r.status_code for r in codes] == [200] * 10 + [429] * 2
            assert all("RateLimit" in r for r in codes)
            masters.add(topology.master_of(revocations_key(str(key.lineage))).port)
        assert len(masters) > 1  # the keys spread over several masters
        assert limiter.failures_open == failures  # every decision made by the cluster

    def test_tokens_revocation_and_signed_writes(
        self, topology: Cluster, on: None, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        failures = limiter.failures_open
        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        assert call(client, token).status_code == 200
        assert form("/auth/revoke", client, raw, token=token).status_code == 200
        refused(call(client, token), "revoked")
        credential: tuple[HMACCredential, str] = make_hmac()
        body = b'{"sku": "abc-123", "quantity": 2}'
        sent: list[Any] = []

        def keep(request: dict[str, Any]) -> None:
            sent.append(request)

        assert send(credential, "POST", "/v1/orders", body, tamper=keep).status_code == 201
        replayed = Client().generic(
            "POST",
            "/v1/orders",
            data=body,
            content_type=sent[0]["headers"].pop("Content-Type"),
            headers=sent[0]["headers"],
        )
        assert replayed.status_code == 401 and replayed.json()["code"] == "replayed"
        assert limiter.failures_open == failures

    def test_a_plain_client_on_a_cluster_node_is_refused_loudly(
        self, topology: Cluster, caplog: pytest.LogCaptureFixture
    ) -> None:
        """django-redis pointed at a cluster node, as a plain server: its ``MOVED`` replies
        are never taken for answers. The store refuses at the first connection, says what to
        configure, and the failure mode keeps the limits."""
        node = topology.masters()[0]
        caches = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": f"redis://127.0.0.1:{node.port}/0",
            }
        }
        with override_settings(CACHES=caches):
            reset_stores()
            _key, raw = make_key()
            codes = [ping(raw).status_code for _ in range(12)]
        reset_stores()
        assert codes == [200] * 10 + [429] * 2
        assert "not a cluster client" in caplog.text and "redis+cluster://" in caplog.text

    def test_a_reset_keeps_revocations(
        self, topology: Cluster, on: None, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        from apiauth.throttling.limiter import reset_credential

        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        assert form("/auth/revoke", client, raw, token=token).status_code == 200
        assert reset_credential(key.to_credential()) >= 1
        refused(call(client, token), "revoked")

    def test_failover_a_master_killed_mid_traffic(
        self,
        tmp_path: Path,
        client: Client,
        signing_key: Any,
        client_key: Any,
    ) -> None:
        cluster = Cluster(tmp_path)
        cluster.start()
        try:
            with using(cluster.url):
                reset_stores()
                key, raw = make_key()
                _client_key, client_raw = client_key
                token = obtain(client, client_raw).json()["access_token"]
                assert form("/auth/revoke", client, client_raw, token=token).status_code == 200
                victim = cluster.master_of(revocations_key(str(key.lineage)))

                def promoted() -> bool:
                    lineage_key = revocations_key(str(key.lineage))
                    return cluster.master_of(lineage_key).port != victim.port

                held(traffic_through_a_failover(raw, victim.kill, promoted))
                cluster.wait_ok()
                codes = [ping(raw).status_code for _ in range(12)]
                assert codes.count(200) <= 10 and codes[-1] == 429
                refused(call(client, token), "revoked")
        finally:
            cluster.stop()
            reset_stores()


# -- Sentinel ------------------------------------------------------------------------------


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[SentinelSetup]:
    setup = SentinelSetup(tmp_path)
    setup.start()
    yield setup
    setup.stop()


class TestSentinel:
    def test_limits_and_revocation(
        self, topology: SentinelSetup, on: None, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        _key, raw = make_key()
        assert [ping(raw).status_code for _ in range(12)] == [200] * 10 + [429] * 2
        token = obtain(client, client_key[1]).json()["access_token"]
        assert form("/auth/revoke", client, client_key[1], token=token).status_code == 200
        refused(call(client, token), "revoked")

    @pytest.mark.parametrize("how", ["kill", "planned"])
    def test_failover_workers_follow_without_a_restart(
        self,
        topology: SentinelSetup,
        on: None,
        how: str,
        client: Client,
        signing_key: Any,
        client_key: Any,
    ) -> None:
        _key, raw = make_key()
        token = obtain(client, client_key[1]).json()["access_token"]
        assert form("/auth/revoke", client, client_key[1], token=token).status_code == 200
        old = topology.primary

        def failover() -> None:
            if how == "kill":
                old.kill()
            else:
                topology.failover()

        def promoted() -> bool:
            return topology.primary_port() == topology.replica.port

        held(traffic_through_a_failover(raw, failover, promoted))
        topology.wait_promoted(topology.replica)
        # On the new primary: the bucket it holds decides, exactly.
        new = topology.replica.client()
        assert any(b"burst" in k for k in new.keys("rl:*"))
        codes = [ping(raw).status_code for _ in range(12)]
        assert codes.count(200) <= 10 and codes[-1] == 429
        refused(call(client, token), "revoked")

    def test_failover_through_django_redis(self, topology: SentinelSetup) -> None:
        """Without ``REDIS_URL``: django-redis's own Sentinel client for ``RATELIMIT_CACHE``.
        Its workers follow the failover too (each reconnect asks the sentinels)."""
        timeouts = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
        caches = {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": f"redis://{topology.service}/0",
                "OPTIONS": {
                    "CLIENT_CLASS": "django_redis.client.SentinelClient",
                    "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                    "SENTINELS": [("127.0.0.1", s.port) for s in topology.sentinels],
                    "SENTINEL_KWARGS": timeouts,
                    "SOCKET_TIMEOUT": 0.5,
                    "SOCKET_CONNECT_TIMEOUT": 0.5,
                },
            }
        }
        apiauth = {
            **settings.APIAUTH,
            "RATELIMIT_BREAKER_SECONDS": BREAKER,
            "RATELIMIT_LOCAL_PROCESSES": 5,
        }
        with override_settings(CACHES=caches, APIAUTH=apiauth):
            reset_stores()
            try:
                _key, raw = make_key()

                def promoted() -> bool:
                    return topology.primary_port() == topology.replica.port

                held(traffic_through_a_failover(raw, topology.primary.kill, promoted))
                codes = [ping(raw).status_code for _ in range(12)]
                assert codes.count(200) <= 10 and codes[-1] == 429
            finally:
                reset_stores()

    def test_a_write_lost_in_the_failover(
        self, topology: SentinelSetup, on: None, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        """The mark reached the primary but not the replica when the primary died: the
        promoted replica's marks were loaded by another server and are not trusted."""
        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        assert call(client, token).status_code == 200
        assert form("/auth/revoke", client, raw, token=token).status_code == 200
        refused(call(client, token), "revoked")
        replica, hashed = topology.replica.client(), revocations_key(str(key.lineage))
        wait_for(lambda: replica.hlen(hashed) == 2, 10, "replication of the mark")
        # Undo on the replica what had not reached it yet.
        replica.config_set("replica-read-only", "no")
        field = next(f for f in replica.hkeys(hashed) if f != b"e")
        replica.hdel(hashed, field)
        topology.primary.kill()
        topology.wait_promoted(topology.replica)
        deadline = time.monotonic() + 10
        while True:
            response = call(client, token)
            if response.status_code != 503 or time.monotonic() > deadline:
                break
        refused(response, "revoked")  # by the database, or by the marks loaded again

        def loaded_again() -> bool:
            get_store().breaker.open_until = 0.0
            refused(call(client, token), "revoked")
            return replica.hlen(hashed) == 2

        wait_for(loaded_again, 10, "the marks loaded under the new primary")
        server, replication = replica.info("server"), replica.info("replication")
        epoch = f"{server['run_id']}:{replication['master_replid']}"
        assert replica.hget(hashed, "e") == epoch.encode()
