"""The revocation rows and their copy in the store, unit by unit (gaps a mutation run found)."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from apiauth import revocation
from apiauth.models import Revocation
from apiauth.store import Check, get_store
from apiauth.store.keys import revocations_key
from tests.conftest import RedisServer

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)


def row(lineage: str, name: str, value: float = revocation.FOREVER, **fields: Any) -> Revocation:
    fields.setdefault("expires_at", timezone.now() + HOUR)
    return Revocation.objects.create(lineage=lineage, name=name, value=value, **fields)


def test_a_load_copies_this_lineages_live_rows_only(_redis: RedisServer) -> None:
    row("a", "j:live")
    row("a", "j:expired", expires_at=timezone.now() - HOUR)
    row("b", "j:other")
    revocation.load("a")
    stored = _redis.client().hgetall(revocations_key("a"))
    assert set(stored) == {b"e", b"j:live"}
    assert float(stored[b"j:live"]) == revocation.FOREVER


def test_an_expired_row_revokes_nothing() -> None:
    row("a", "b", value=time.time(), expires_at=timezone.now() - HOUR)
    assert revocation.revoked_in_database("a", ("b",), time.time() - 60) is False
    assert revocation.is_revoked("a", ("b",), time.time() - 60) is False


def test_is_revoked_asks_the_database_once(django_assert_num_queries: Any) -> None:
    row("a", revocation.BEFORE, value=time.time())
    assert revocation.is_revoked("a", (revocation.BEFORE,), time.time() - 60) is True
    with django_assert_num_queries(0):
        assert revocation.is_revoked("a", (revocation.BEFORE,), time.time() - 60) is True
        assert revocation.is_revoked("a", (revocation.BEFORE,), time.time() + 60) is False


def test_publish_marks_the_row_it_wrote(_redis: RedisServer) -> None:
    revocation.is_revoked("a", ("j:1",), 0)  # loaded, empty
    row("b", "j:1")  # first: a lookup by name alone would find it
    row("a", "j:2")
    row("a", "j:1")
    revocation.publish("a", "j:1")
    published = set(Revocation.objects.filter(published=True).values_list("lineage", "name"))
    assert published == {("a", "j:1")}
    assert get_store().revoked(revocations_key("a"), ("j:1",), 0) is True
    assert get_store().revoked(revocations_key("a"), ("j:2",), 0) is False
    revocation.publish("a", "j:2", committed=False)  # written, not yet counted as done
    assert get_store().revoked(revocations_key("a"), ("j:2",), 0) is True
    assert not Revocation.objects.get(lineage="a", name="j:2").published


def test_publish_pending_writes_what_is_live_and_unpublished(_redis: RedisServer) -> None:
    for lineage in ("a", "b", "c"):
        revocation.is_revoked(lineage, ("j:1",), 0)  # each lineage loaded, empty
    row("a", "j:1")
    row("a", "j:2")
    row("b", "j:1", expires_at=timezone.now() - HOUR)
    row("c", "j:1", published=True)
    assert revocation.publish_pending() == 2
    assert get_store().revoked(revocations_key("a"), ("j:1",), 0) is True
    assert get_store().revoked(revocations_key("c"), ("j:1",), 0) is False
    assert all(Revocation.objects.filter(lineage="a").values_list("published", flat=True))
    assert not Revocation.objects.get(lineage="b").published
    assert revocation.publish_pending() == 0


def test_revoking_again_keeps_the_later_time_and_the_longer_life() -> None:
    now = time.time()
    revocation.record("a", revocation.BEFORE, now, now + 100)
    revocation.record("a", revocation.BEFORE, now - 50, now + 50)  # earlier and shorter
    kept = Revocation.objects.get()
    assert kept.value == now and abs(kept.expires_at.timestamp() - (now + 100)) < 0.01
    revocation.record("a", revocation.BEFORE, now + 5, now + 200)  # later and longer
    kept.refresh_from_db()
    assert kept.value == now + 5 and abs(kept.expires_at.timestamp() - (now + 200)) < 0.01
    assert kept.expires_at.tzinfo is not None


def test_a_revoked_before_moment_lives_as_long_as_a_token_can() -> None:
    revocation.revoke_issued_before(["a"], when=1_800_000_000.0)
    kept = Revocation.objects.get()
    lifetime = revocation.mark_ttl_ms() / 1000
    assert kept.expires_at.timestamp() == pytest.approx(1_800_000_000.0 + lifetime, abs=0.01)


def test_settle_answers_from_the_database_and_drops_the_marks(_redis: RedisServer) -> None:
    from apiauth.store import TokenRevoked

    check = revocation.check_for("a", {"jti": "t"}, time.time() - 60, key="k", token="v")
    assert revocation.settle(check) == Check(
        key="k", token="v", marks=(), issued_at=check.issued_at, revocations="", lineage="a"
    )
    revocation.revoke_jti("a", "t", time.time() + 60)
    with pytest.raises(TokenRevoked) as caught:
        revocation.settle(check)
    assert caught.value.args == ("k",)
    _redis.stop()
    try:  # the store down: the database still answers
        get_store().breaker.open_until = 0.0
        with pytest.raises(TokenRevoked):
            revocation.settle(check)
    finally:
        _redis.start()


def test_a_mark_missed_after_the_commit_is_logged_and_left_pending(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from apiauth.store import StoreUnavailable

    store = get_store()
    store.breaker.record_failure(60)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(StoreUnavailable):
        revocation.revoke_issued_before(["a"])
    assert not Revocation.objects.get(lineage="a").published
    [message] = [r.getMessage() for r in caplog.records if r.name == "apiauth.revocation"]
    assert message == (
        "revocation of a saved; its mark will be written when the store is back: "
        "circuit breaker open"
    )
    store.breaker.open_until = 0.0
    assert revocation.publish_pending() == 1


def test_revoking_again_is_published_anew() -> None:
    row("a", revocation.BEFORE, value=1.0, published=True)
    revocation.record("a", revocation.BEFORE, 2.0, time.time() + 60)
    assert Revocation.objects.get().published is False  # its mark counts once committed


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_a_revocation_is_published_at_once(_redis: RedisServer) -> None:
    revocation.is_revoked("a", (revocation.BEFORE,), 0)  # loaded, empty
    revocation.revoke_issued_before(["a"])
    assert Revocation.objects.get().published is True
    assert get_store().revoked(revocations_key("a"), (revocation.BEFORE,), 0) is True


@pytest.mark.django_db(databases=["default", "other"])
@override_settings(DATABASE_ROUTERS=["tests.routers.LaggingReplicaRouter"])
def test_rows_are_read_from_the_primary_not_a_lagging_replica(_redis: RedisServer) -> None:
    """A replica that has not seen the revocation must not load marks without it."""
    revocation.revoke_issued_before(["a"])
    assert not Revocation.objects.using("other").exists()
    assert revocation.revoked_in_database("a", (revocation.BEFORE,), time.time() - 5) is True
    assert revocation.is_revoked("a", (revocation.BEFORE,), time.time() - 5) is True
    revocation.revoke_issued_before(["b"])
    assert revocation.publish_pending() == 2
