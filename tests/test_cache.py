"""Credentials served from a worker's copy: no SQL, and every change still immediate.

"Another worker" is simulated the honest way: the change is made through a fresh instance and
reaches this process only through Redis, as it would reach any other worker.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apiauth import cache
from apiauth.cache import key_cache
from apiauth.models import APIKey
from apiauth.store import RedisStore
from tests.conftest import RedisServer
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db

PING = "/v1/ping"
WHOAMI = "/v1/whoami"


def get(raw: str, path: str = PING, **extra: Any) -> Any:
    return APIClient().get(path, HTTP_X_API_KEY=raw, **extra)


def warm(raw: str, path: str = PING) -> None:
    assert get(raw, path).status_code == 200
    assert get(raw, path).status_code == 200  # served from the copy


class TestChangesTakeEffectAtOnce:
    """Each change is made elsewhere; the next request through the warm copy sees it."""

    @pytest.mark.parametrize("path", [PING, WHOAMI])
    def test_revoke(self, path: str) -> None:
        key, raw = make_key()
        warm(raw, path)
        APIKey.objects.get(pk=key.pk).revoke(reason="leaked")
        response = get(raw, path)
        assert response.status_code == 401 and response.json()["code"] == "revoked"

    def test_scopes_edited(self) -> None:
        key, raw = make_key(scopes=["orders:read"])
        warm(raw)
        other = APIKey.objects.get(pk=key.pk)
        other.scopes = ["orders:read", "orders:write"]
        other.save()
        assert get(raw).json()["scopes"] == ["orders:read", "orders:write"]

    def test_networks_edited(self) -> None:
        key, raw = make_key()
        warm(raw)
        other = APIKey.objects.get(pk=key.pk)
        other.allowed_networks = ["192.0.2.0/24"]
        other.save()
        response = get(raw, REMOTE_ADDR="198.51.100.1")
        assert response.status_code == 403 and response.json()["code"] == "ip_not_allowed"

    def test_plan_and_overrides_edited(self) -> None:
        key, raw = make_key()
        warm(raw)
        other = APIKey.objects.get(pk=key.pk)
        other.rate_limits = {"rate": "2/hour", "burst": 1}
        other.save()
        response = get(raw)
        assert response["X-RateLimit-Limit"] == "1"

    def test_expiry_brought_forward(self) -> None:
        key, raw = make_key()
        warm(raw)
        other = APIKey.objects.get(pk=key.pk)
        other.expires_at = timezone.now() - datetime.timedelta(seconds=1)
        other.save(update_fields=["expires_at"])
        assert get(raw).json()["code"] == "expired"

    def test_rolled_past_its_grace(self) -> None:
        key, raw = make_key()
        warm(raw)
        APIKey.objects.roll(APIKey.objects.get(pk=key.pk), datetime.timedelta(0))
        assert get(raw).json()["code"] == "expired"

    def test_deleted(self) -> None:
        key, raw = make_key()
        warm(raw)
        APIKey.objects.filter(pk=key.pk).delete()
        assert get(raw).json()["code"] == "unknown"

    def test_owner_deactivated(self) -> None:
        user = make_user()
        _key, raw = make_key(owner=user)
        warm(raw)
        other = User.objects.get(pk=user.pk)
        other.is_active = False
        other.save()
        assert get(raw).json()["code"] == "owner_inactive"

    def test_owner_deleted(self) -> None:
        user = make_user()
        _key, raw = make_key(owner=user)
        warm(raw)
        User.objects.get(pk=user.pk).delete()
        assert get(raw).json()["code"] == "unknown"

    def test_owner_renamed_reaches_request_user(self) -> None:
        user = make_user()
        _key, raw = make_key(owner=user)
        warm(raw)
        other = User.objects.get(pk=user.pk)
        other.username = "renamed"
        other.save()
        assert get(raw).json()["owner"] == "renamed"

    def test_a_login_does_not_invalidate(self, django_assert_num_queries: Any) -> None:
        user = make_user()
        _key, raw = make_key(owner=user)
        warm(raw)
        from django.contrib.auth.models import update_last_login

        update_last_login(User, User.objects.get(pk=user.pk))
        with django_assert_num_queries(0):
            assert get(raw).status_code == 200

    def test_a_bulk_update_is_made_immediate_by_invalidate(self) -> None:
        key, raw = make_key()
        warm(raw)
        APIKey.objects.filter(pk=key.pk).update(scopes=[])
        assert get(raw).json()["scopes"] != []  # no signal: the copy lives until its TTL
        cache.invalidate([key.lineage_id])
        assert get(raw).json()["scopes"] == []


class TestTheCheck:
    def test_a_view_without_the_throttle_confirms_the_copy_itself(
        self, _redis: RedisServer, django_assert_num_queries: Any
    ) -> None:
        key, raw = make_key()
        warm(raw, WHOAMI)
        _redis.client().delete(cache.version_key(key.lineage_id))  # a change elsewhere
        with django_assert_num_queries(1):  # found stale: the row again
            assert get(raw, WHOAMI).status_code == 200
        with django_assert_num_queries(0):
            assert get(raw, WHOAMI).status_code == 200

    def test_who_confirms_the_copy(self) -> None:
        """Only a view that will run :class:`TokenBucketThrottle` leaves the check to it; any
        other view (another throttle, none, a ``get_throttles`` of its own that does not
        return ours) has the copy confirmed during authentication."""
        from django.test import RequestFactory
        from rest_framework.request import Request
        from rest_framework.throttling import UserRateThrottle
        from rest_framework.views import APIView

        from apiauth.authentication import APIKeyAuthentication
        from apiauth.throttling import TokenBucketThrottle

        class OurSubclass(TokenBucketThrottle):
            pass

        def deferred(throttles: list[Any], own: list[Any] | None = None) -> bool:
            attrs: dict[str, Any] = {"throttle_classes": throttles}
            if own is not None:
                attrs["get_throttles"] = lambda self: [cls() for cls in own]
            view = type("View", (APIView,), attrs)()
            request = Request(RequestFactory().get("/"), parser_context={"view": view})
            return APIKeyAuthentication().check_is_deferred(request)

        assert deferred([TokenBucketThrottle]) and deferred([UserRateThrottle, OurSubclass])
        assert not deferred([]) and not deferred([UserRateThrottle])
        assert deferred([], own=[TokenBucketThrottle])
        assert not deferred([TokenBucketThrottle], own=[UserRateThrottle])

    def test_a_stale_copy_is_never_debited_twice(self, _redis: RedisServer) -> None:
        key, raw = make_key()
        warm(raw)
        remaining = int(get(raw)["X-RateLimit-Remaining"])
        _redis.client().delete(cache.version_key(key.lineage_id))
        assert int(get(raw)["X-RateLimit-Remaining"]) == remaining - 1

    def test_each_request_gets_its_own_user(self) -> None:
        user = make_user()
        _key, raw = make_key(owner=user)
        warm(raw, WHOAMI)  # the view sets an attribute on request.user
        entry = key_cache.entries[next(iter(key_cache.entries))]
        assert not hasattr(entry.obj.owner, "touched_by_view")
        assert entry.credential is not None
        assert not hasattr(entry.credential.owner, "touched_by_view")

    def test_a_copys_credential_is_built_once(self) -> None:
        """Each request of a copy gets the credential built with it: as it is without an
        owner, else with its own copy of the owner, which is the request's user."""
        _key, raw = make_key()
        warm(raw)
        (entry,) = key_cache.entries.values()
        built = entry.credential
        assert built is not None and built.owner is None
        assert get(raw).status_code == 200
        assert entry.credential is built
        _owned, owned_raw = make_key(owner=make_user())
        warm(owned_raw, WHOAMI)
        entry = key_cache.entries[next(reversed(key_cache.entries))]
        built = entry.credential
        assert built is not None and built.owner is entry.obj.owner
        assert get(owned_raw, WHOAMI).json()["owner_is_user"] is True
        assert entry.credential is built

    def test_a_settings_change_drops_the_copies(self) -> None:
        """A copy's credential was built under the settings of its day (the default plan)."""
        _key, raw = make_key()
        warm(raw)
        assert len(key_cache.entries) == 1
        with override_settings(APIAUTH={"DEFAULT_PLAN": None}):
            assert not key_cache.entries
        assert not key_cache.entries  # and back again

    def test_a_machine_key_is_cached_too(self, django_assert_num_queries: Any) -> None:
        _key, raw = make_key()
        warm(raw)
        with django_assert_num_queries(0):
            assert get(raw).json()["owner"] is None

    def test_a_held_copy_is_found_before_any_parsing(
        self, monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
    ) -> None:
        """A key whose copy this worker holds is found by its digest: the parse (shape,
        checksum) ran when the copy was made. Anything else is still parsed first: a key one
        character away from a held one, or one that was never seen."""
        from apiauth import crypto

        _key, raw = make_key()
        warm(raw)
        parse, parsed = crypto.parse_key, []

        def counted(value: str, prefix: str) -> crypto.ParsedKey:
            parsed.append(value)
            return parse(value, prefix)

        monkeypatch.setattr(crypto, "parse_key", counted)
        with django_assert_num_queries(0):
            assert get(raw).status_code == 200
        assert parsed == []
        tampered = raw[:-1] + ("A" if raw[-1] != "A" else "B")
        with django_assert_num_queries(0):
            assert get(tampered).json()["code"] == "malformed"
        _other, other_raw = make_key()
        assert get(other_raw).status_code == 200
        assert parsed == [tampered, other_raw]

    def test_revoked_keys_fail_from_the_copy(self, django_assert_num_queries: Any) -> None:
        key, raw = make_key()
        key.revoke()
        assert get(raw).json()["code"] == "revoked"
        with django_assert_num_queries(0):  # revocation is final: the copy can say so
            assert get(raw).json()["code"] == "revoked"

    def test_the_lru_is_bounded(self, settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_SIZE": 2}
        raws = [make_key(name=f"k{i}")[1] for i in range(4)]
        for raw in raws:
            assert get(raw).status_code == 200
        assert len(key_cache.entries) == 2


class TestRedisState:
    def test_one_small_token_per_lineage_and_no_key_material(self, _redis: RedisServer) -> None:
        key, raw = make_key()
        warm(raw)
        client = _redis.client()
        token_key = cache.version_key(key.lineage_id)
        assert client.exists(token_key)
        assert (client.memory_usage(token_key) or 0) < 300
        assert 0 < client.pttl(token_key) <= 86_400_000
        names: list[bytes] = client.keys("*")  # type: ignore[assignment]
        dumps: list[bytes] = [client.dump(name) or b"" for name in names]
        everything = b" ".join(names + dumps)
        parsed = raw.split("_")
        assert parsed[-1].encode() not in everything and key.key_hash.encode() not in everything

    def test_redis_down_falls_back_to_one_query(
        self, _redis: RedisServer, django_assert_num_queries: Any
    ) -> None:
        key, raw = make_key()
        warm(raw)
        _redis.stop()
        with django_assert_num_queries(1):
            assert get(raw).status_code == 200  # limits fail open, the key from the database
        APIKey.objects.get(pk=key.pk).revoke()  # its token cannot be deleted now
        assert get(raw).json()["code"] == "revoked"
        _redis.start()
        from apiauth.store import get_store

        backend = get_store()
        assert isinstance(backend, RedisStore)
        backend.breaker.record_success()
        # The outage dropped every copy: nothing from before it is trusted again.
        assert get(raw).json()["code"] == "revoked"

    @override_settings(APIAUTH={"RATELIMIT_BACKEND": "local"})
    def test_no_copies_without_redis(self, django_assert_num_queries: Any) -> None:
        _key, raw = make_key()
        get(raw)
        with django_assert_num_queries(1):
            assert get(raw).status_code == 200
        assert not key_cache.entries


class TestEdges:
    def test_first_request_while_redis_is_down(
        self, _redis: RedisServer, django_assert_num_queries: Any
    ) -> None:
        _key, raw = make_key()
        _redis.stop()  # the breaker is still closed: the fill finds out
        with django_assert_num_queries(2):  # the row (read once), the first use's last_used
            assert get(raw).status_code == 200
        assert not key_cache.entries

    def test_a_change_inside_a_transaction_is_announced_again_on_commit(
        self, _redis: RedisServer, django_capture_on_commit_callbacks: Any
    ) -> None:
        from django.db import transaction

        key, raw = make_key()
        warm(raw)
        token_key = cache.version_key(key.lineage_id)
        with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
            APIKey.objects.get(pk=key.pk).revoke()
        assert not _redis.client().exists(token_key)  # deleted at once...
        assert get(raw).json()["code"] == "revoked"
        get(raw)  # a fill between the change and its commit
        assert _redis.client().exists(token_key)
        for callback in callbacks:
            callback()
        assert not _redis.client().exists(token_key)  # ... and again after the commit

    @override_settings(APIAUTH={"RATELIMIT_BACKEND": "local"})
    def test_invalidate_without_redis_is_harmless(self) -> None:
        cache.invalidate(["00000000-0000-0000-0000-000000000000"])

    def test_invalidate_nothing(self, _redis: RedisServer) -> None:
        cache.invalidate([])

    def test_a_failed_usage_write_is_logged_not_raised(self, caplog: Any) -> None:
        from apiauth import usage

        class Broken:
            def write_last_used(self, now: Any, ip: Any) -> None:
                raise RuntimeError("database went away")

        usage.defer(Broken(), timezone.now(), None)
        usage.flush()
        assert "could not record the use" in caplog.text
        usage.flush()  # nothing left

    def test_outside_a_view_the_copy_is_confirmed_at_once(self) -> None:
        from django.test import RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import APIKeyAuthentication

        assert not APIKeyAuthentication().check_is_deferred(Request(RequestFactory().get("/")))


class TestTheCopies:
    """``CredentialCache`` itself, on the real Redis and database, with a clock of our own."""

    @pytest.fixture
    def clock(self) -> list[float]:
        return [1000.0]

    @pytest.fixture
    def lookups(self) -> list[str]:
        return []

    @pytest.fixture
    def copies(self, clock: list[float], lookups: list[str]) -> cache.CredentialCache[APIKey]:
        def lookup(digest: str) -> APIKey | None:
            lookups.append(digest)
            return APIKey.objects.get_by_digest(digest)

        return cache.register(
            cache.CredentialCache(lookup, lambda key: key.lineage_id, clock=lambda: clock[0])
        )

    def test_registered_copies_are_dropped_with_the_rest(
        self, copies: cache.CredentialCache[APIKey]
    ) -> None:
        key, _raw = make_key()
        assert copies in cache.caches
        assert copies.get(key.key_hash) is not None and copies.entries
        cache.clear_all()
        assert not copies.entries
        cache.caches.remove(copies)

    def test_a_copy_ends_at_its_expiry(
        self,
        copies: cache.CredentialCache[APIKey],
        clock: list[float],
        lookups: list[str],
        settings: Any,
    ) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": 30}
        key, _raw = make_key()
        first = copies.get(key.key_hash)
        assert first is not None and first.expires == 1030.0
        assert len(lookups) == 2  # the row names the lineage, then the row after the token
        clock[0] = 1029.999
        assert copies.get(key.key_hash) is first and len(lookups) == 2
        clock[0] = 1030.0
        again = copies.get(key.key_hash)
        assert again is not first and len(lookups) == 3  # the token from the old copy
        assert again is not None and again.check == first.check

    def test_the_token_is_sixteen_hex_characters(
        self, copies: cache.CredentialCache[APIKey], _redis: RedisServer
    ) -> None:
        import re

        key, _raw = make_key()
        entry = copies.get(key.key_hash)
        assert entry is not None and entry.check is not None
        assert re.fullmatch(r"[0-9a-f]{16}", entry.check.token)
        assert _redis.client().get(entry.check.key) == entry.check.token.encode()

    def test_a_row_gone_before_the_refill_drops_the_copy(
        self, copies: cache.CredentialCache[APIKey], clock: list[float]
    ) -> None:
        key, _raw = make_key()
        assert copies.get(key.key_hash) is not None
        APIKey.objects.filter(pk=key.pk).delete()  # bypasses the signals: no invalidation
        clock[0] += 3600  # the copy expires; the refill reads the token, then no row
        assert copies.get(key.key_hash) is None
        assert key.key_hash not in copies.entries

    def test_a_row_gone_while_redis_is_down(
        self, copies: cache.CredentialCache[APIKey], clock: list[float], _redis: RedisServer
    ) -> None:
        """The expired copy names its token; Redis cannot be asked, so the database answers,
        and it has no such row."""
        key, _raw = make_key()
        assert copies.get(key.key_hash) is not None
        APIKey.objects.filter(pk=key.pk).delete()
        clock[0] += 3600
        _redis.stop()
        assert copies.get(key.key_hash) is None

    def test_the_least_recently_stored_goes_first(
        self, copies: cache.CredentialCache[APIKey], settings: Any
    ) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_SIZE": 2}
        digests = [make_key(name=f"k{i}")[0].key_hash for i in range(3)]
        for digest in digests:
            assert copies.get(digest) is not None
        assert list(copies.entries) == digests[1:]

    def test_forget(self, copies: cache.CredentialCache[APIKey]) -> None:
        key, _raw = make_key()
        copies.get(key.key_hash)
        copies.forget("not cached")  # nothing to forget: no error
        copies.forget(key.key_hash)
        assert not copies.entries


class TestLineagesApart:
    def test_each_lineage_has_its_own_token(self) -> None:
        a, b = make_key(name="a")[0], make_key(name="b")[0]
        assert cache.version_key(a.lineage_id) == f"rl:{{k{a.lineage.hex}}}:cred"
        assert cache.version_key(a.lineage_id) != cache.version_key(b.lineage_id)

    def test_revoking_one_key_leaves_the_others_copies(
        self, django_assert_num_queries: Any
    ) -> None:
        key, raw = make_key(name="a")
        _other, other_raw = make_key(name="b")
        warm(raw)
        warm(other_raw)
        APIKey.objects.get(pk=key.pk).revoke()
        with django_assert_num_queries(0):
            assert get(other_raw).status_code == 200
        assert get(raw).json()["code"] == "revoked"

    def test_creating_a_user_invalidates_nothing(self) -> None:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            make_user(username="newcomer")
        assert not [q for q in queries if "apiauth_" in q["sql"]]


class TestTTLSetting:
    @pytest.mark.parametrize("ttl", [0, -1])
    def test_no_copies_when_the_ttl_is_not_positive(
        self, ttl: int, settings: Any, django_assert_num_queries: Any
    ) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": ttl}
        _key, raw = make_key()
        assert get(raw).status_code == 200
        with django_assert_num_queries(1):
            assert get(raw).status_code == 200
        assert not key_cache.entries
        _gone, gone_raw = make_key(name="gone")
        APIKey.objects.filter(name="gone").delete()
        response = get(gone_raw)
        assert response.status_code == 401 and response.json()["code"] == "unknown"

    def test_one_second_is_enough_to_keep_copies(self, settings: Any) -> None:
        settings.APIAUTH = {**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": 1}
        _key, raw = make_key()
        assert get(raw).status_code == 200
        assert key_cache.entries


def test_an_unknown_key_while_redis_is_down_is_a_401(_redis: RedisServer) -> None:
    _gone, raw = make_key(name="gone")
    APIKey.objects.filter(name="gone").delete()
    _redis.stop()  # the breaker is still closed: the fill finds out
    response = get(raw)
    assert response.status_code == 401 and response.json()["code"] == "unknown"


def test_a_failed_invalidation_is_logged(_redis: RedisServer, caplog: Any) -> None:
    from apiauth.store import StoreUnavailable

    key, raw = make_key()
    warm(raw)
    _redis.stop()
    APIKey.objects.get(pk=key.pk).revoke()
    [record, *_] = [r for r in caplog.records if r.name == "apiauth.cache"]
    assert record.levelname == "ERROR"
    assert record.getMessage().startswith(
        "could not invalidate 1 cached credential(s); copies expire within 60.0s: "
    )
    assert isinstance(record.args, tuple) and isinstance(record.args[2], StoreUnavailable)


@pytest.mark.django_db(databases=["default", "other"], transaction=True)
class TestAnotherDatabase:
    """A change saved to another database is announced again when *that* database commits:
    a fill between the change and its commit would otherwise keep a token the first deletion
    missed. Outside any transaction on ``default``, so only the right alias can tell."""

    def refill(self, lineage: str, _redis: RedisServer) -> str:
        key = cache.version_key(lineage)
        _redis.client().set(key, "a-fill-in-between")
        return key

    def test_invalidate(self, _redis: RedisServer) -> None:
        from django.db import transaction

        lineage = "3f1c9a00-0000-0000-0000-000000000000"
        with transaction.atomic(using="other"):
            cache.invalidate([lineage], using="other")
            token_key = self.refill(lineage, _redis)
        assert not _redis.client().exists(token_key)

    def test_a_credential_saved_there(self, _redis: RedisServer) -> None:
        from django.db import transaction

        key, _raw = make_key()
        key.save(using="other", force_insert=True)  # created there: nothing to announce
        with transaction.atomic(using="other"):
            key.scopes = ["orders:read"]
            key.save(using="other")
            token_key = self.refill(key.lineage_id, _redis)
        assert not _redis.client().exists(token_key)

    def test_the_managers_query_the_database_asked(self) -> None:
        key, _raw = make_key()
        key.save(using="other", force_insert=True)
        APIKey.objects.filter(pk=key.pk).delete()  # only "other" holds it now
        assert list(APIKey.objects.db_manager("other").usable()) == [key]
        assert not APIKey.objects.usable().exists()

    def test_an_owner_saved_there(self, _redis: RedisServer) -> None:
        from django.db import transaction

        user = make_user()
        key, _raw = make_key(owner=user)
        user.save(using="other")
        with transaction.atomic(using="other"):
            user.is_active = False
            user.save(using="other")
            token_key = self.refill(key.lineage_id, _redis)
        assert not _redis.client().exists(token_key)
