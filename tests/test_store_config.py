"""The store's configuration: its client from ``REDIS_URL``, its checks, and the failure mode
that applies while it is unavailable."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from django.core.checks import run_checks
from django.test import override_settings
from redis.cluster import RedisCluster
from rest_framework.test import APIClient

from apiauth.store import LocalStore, RedisStore, StoreUnavailable, get_store
from apiauth.store.clients import InvalidRedisURL, build_client, topology
from apiauth.throttling import limiter, local
from apiauth.throttling.rates import Limit, parse_limits
from tests.conftest import RedisServer
from tests.factories import make_key

SECOND = 1_000_000


class TestURLs:
    @pytest.mark.parametrize(
        ("url", "kind"),
        [
            ("redis://h:6379/0", "server"),
            ("rediss://h:6380/1", "server"),
            ("unix:///run/redis.sock", "server"),
            ("redis+sentinel://a:26379,b:26380/mymaster", "sentinel"),
            ("REDIS+CLUSTER://a:7000", "cluster"),
        ],
    )
    def test_topology(self, url: str, kind: str) -> None:
        assert topology(url) == kind

    @pytest.mark.parametrize(
        "url",
        [
            "h:6379",
            "memcached://h:11211",
            "redis+cluster://a",
            "redis+cluster://a:x",
            "redis+sentinel://a:26379",
            "redis+sentinel://a:26379/m/db",
            "redis+sentinel://a:26379/m/0/extra",
            "redis+sentinel://:26379/m",
        ],
    )
    def test_invalid(self, url: str) -> None:
        with pytest.raises(InvalidRedisURL):
            build_client(url)

    def test_one_server_with_the_default_timeouts(self) -> None:
        client = build_client("redis://:s3cret@127.0.0.1:6390/2")
        kwargs = client.connection_pool.connection_kwargs
        assert (kwargs["db"], kwargs["password"]) == (2, "s3cret")
        assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == 0.5
        options = build_client("redis://h/0", {"socket_timeout": 2}).connection_pool
        assert options.connection_kwargs["socket_timeout"] == 2

    def test_sentinel(self) -> None:
        client = build_client("redis+sentinel://u:p%40ss@s1:26379,[::1]:26380/mymaster/3")
        pool = client.connection_pool
        assert pool.service_name == "mymaster"
        assert pool.connection_kwargs["db"] == 3
        assert pool.connection_kwargs["password"] == "p@ss"
        sentinels = pool.sentinel_manager.sentinels
        assert [(s.connection_pool.connection_kwargs["host"]) for s in sentinels] == ["s1", "::1"]
        # The sentinels are asked with the same short timeouts, not redis-py's defaults.
        assert sentinels[0].connection_pool.connection_kwargs["socket_timeout"] == 0.5


class TestChecks:
    def ids(self) -> list[str]:
        return [str(m.id) for m in run_checks() if str(m.id).startswith("apiauth.")]

    @pytest.mark.parametrize(
        "settings_", [{"REDIS_URL": "memcached://x:1"}, {"REDIS_URL": 5}, {"REDIS_OPTIONS": []}]
    )
    def test_e023_an_unusable_url(self, settings_: dict[str, Any], settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "REDIS_URL": "redis://h/0", **settings_}
        assert "apiauth.E023" in self.ids()

    @pytest.mark.parametrize("processes", [0, -1, "4", True, 1.5])
    def test_e024_local_processes(self, processes: Any, settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_LOCAL_PROCESSES": processes}
        assert "apiauth.E024" in self.ids()

    def test_w010_failing_open(self, settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "open"}
        assert "apiauth.W010" in self.ids()

    def test_e008_knows_local(self, settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "local"}
        assert "apiauth.E008" not in self.ids()
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "degrade"}
        assert "apiauth.E008" in self.ids()

    def test_none_for_a_good_configuration(self, settings: Any) -> None:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "REDIS_URL": "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
            "RATELIMIT_LOCAL_PROCESSES": 24,
        }
        assert not {"apiauth.E023", "apiauth.E024", "apiauth.W010"} & set(self.ids())


class TestStoreChoice:
    def test_redis_url_builds_the_stores_own_client(self, _redis: RedisServer) -> None:
        with override_settings(APIAUTH={"REDIS_URL": _redis.url}):
            store = get_store()
            assert isinstance(store, RedisStore) and not store.is_cluster
            assert store.claim("rl:replay:url", 1000) is True
            assert isinstance(store.client, redis.Redis)

    @pytest.mark.django_db
    def test_an_unreachable_cluster_is_an_outage_not_a_500(self) -> None:
        """A cluster client connects to learn the slots as it is built: no node answering is
        an outage like any other (the breaker opens, the failure mode applies)."""
        with override_settings(
            APIAUTH={**django_settings.APIAUTH, "REDIS_URL": "redis+cluster://127.0.0.1:1"}
        ):
            store = get_store()
            assert isinstance(store, RedisStore) and not store.is_cluster
            with pytest.raises(StoreUnavailable):
                store.claim("rl:replay:x", 1000)
            assert store.breaker.is_open
            with pytest.raises(redis.exceptions.RedisClusterException):
                assert isinstance(store.client, RedisCluster)
            _key, raw = make_key()
            response = APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)
            assert response.status_code == 200  # the "local" failure mode decided

    def test_a_user_without_info_is_refused_loudly(
        self, _redis: RedisServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """The store learns each server's epoch from INFO: an ACL that denies it is a
        configuration error, said so, never a silent store without failover detection."""
        admin = _redis.client()
        admin.acl_setuser(
            "noinfo", enabled=True, passwords=["+pw"], keys=["*"], commands=["+@all", "-info"]
        )
        try:
            url = f"redis://noinfo:pw@127.0.0.1:{_redis.port}/0"
            with (
                override_settings(APIAUTH={"REDIS_URL": url}),
                pytest.raises(StoreUnavailable, match="INFO"),
            ):
                get_store().claim("rl:replay:acl", 1000)
        finally:
            admin.acl_deluser("noinfo")
        assert "+info" in caplog.text


@pytest.mark.django_db
class TestFailureModes:
    limits = (Limit("burst", "bucket", 10, interval_us=3600 * SECOND),)

    def outcomes(self, count: int, processes: int = 1, mode: str = "local") -> list[bool]:
        settings = {"RATELIMIT_FAILURE_MODE": mode, "RATELIMIT_LOCAL_PROCESSES": processes}
        store = get_store()
        store.breaker.record_failure(60)
        with override_settings(APIAUTH=settings):
            decided = [
                limiter.decide("aX", self.limits, ["burst"], 1).decision for _ in range(count)
            ]
        return [decision is None or decision.allowed for decision in decided]

    def test_local_is_the_default(self) -> None:
        from apiauth.conf import DEFAULTS

        assert DEFAULTS["RATELIMIT_FAILURE_MODE"] == "local"

    def test_each_process_keeps_its_share(self) -> None:
        assert self.outcomes(12) == [True] * 10 + [False] * 2
        local.clear()
        assert self.outcomes(7, processes=2) == [True] * 5 + [False] * 2

    def test_open_admits_everything(self) -> None:
        assert self.outcomes(12, mode="open") == [True] * 12

    def test_a_share_never_refuses_one_request_of_its_cost(self) -> None:
        share = local.share(self.limits[0], 24, 5)
        assert share.capacity == 5
        # It refills its capacity in the time the whole limit refills its own.
        whole = self.limits[0]
        assert share.capacity * share.interval_us == whole.capacity * whole.interval_us
        quota = parse_limits({"rate": "1/hour", "quotas": ["100/day"]})[1]
        assert local.share(quota, 4, 1).capacity == 25
        assert local.share(whole, 1, 1) is whole

    def test_through_the_api(self, _redis: RedisServer) -> None:
        """A failover mid-traffic: the key's limit holds in this process."""
        _key, raw = make_key()  # the "free" plan: a burst of 10
        client = APIClient()
        assert client.get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 200
        _redis.stop()
        try:
            codes = [client.get("/v1/ping", HTTP_X_API_KEY=raw).status_code for _ in range(12)]
        finally:
            _redis.start()
        assert codes == [200] * 10 + [429] * 2

    def test_a_reset_forgets_the_local_share(self) -> None:
        assert self.outcomes(11)[-1] is False
        local.forget("rl:{aX}")
        assert self.outcomes(1) == [True]

    def test_local_store_never_opens(self) -> None:
        with override_settings(APIAUTH={"RATELIMIT_BACKEND": "local"}):
            assert isinstance(get_store(), LocalStore)


class TestLocalStore:
    """The in-process store keeps the same contract as Redis's (development without Redis)."""

    def test_no_marks_are_kept(self) -> None:
        from apiauth.store import Check, MarksUnloaded

        store = LocalStore()
        limits = (Limit("burst", "bucket", 5, interval_us=SECOND),)
        check = Check(key="v", token="", marks=("b",), issued_at=100.0, revocations="h")
        with pytest.raises(MarksUnloaded):
            store.evaluate(["k"], limits, 1, check=check)
        assert store.mark("h", "b", 150.0, 60_000) == "unloaded"
        assert store.load_marks("h", lambda: {"b": 150.0}, 60_000) is False
        assert store.revoked("h", ("b",), 100.0) is None
        assert store.evaluate(["k"], limits, 1, check=Check(key="v", token="")).allowed

    def test_claims_versions_and_deletions(self) -> None:
        store = LocalStore()
        assert [store.claim("c", 60_000) for _ in range(2)] == [True, False]
        assert store.version("v", "t1") == "t1"  # nothing is cached without a shared store
        store.evaluate(["rl:{a}:burst"], (Limit("burst", "bucket", 5, interval_us=SECOND),), 1)
        assert store.delete(["rl:{a}:burst", "missing"]) == 1


def test_the_former_module_keeps_its_names() -> None:
    """``apiauth.throttling.backends`` was public: its names still import."""
    from apiauth.store import StoreUnavailable
    from apiauth.throttling import backends

    assert backends.BackendUnavailable is StoreUnavailable
    assert backends.get_backend is get_store
    assert backends.RedisBackend is RedisStore and backends.LocalBackend is LocalStore
