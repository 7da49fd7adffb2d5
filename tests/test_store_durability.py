"""Revocations cannot come undone: whatever the store loses, the database brings back.

Each test revokes through the product (the OAuth revocation endpoint, a refresh family, a
client's "revoked before" moment), then makes Redis lose the marks the way production does
(a flush, a restart, eviction, a failover that promoted a replica without the last write, an
operator's reset), and expects the token refused.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from apiauth import revocation
from apiauth.models import AuditEvent, Revocation, TokenFamily
from apiauth.store import StoreUnavailable, get_store
from apiauth.store.keys import revocations_key, version_key
from tests.conftest import RedisServer
from tests.utils import call, form, obtain, refused

pytestmark = pytest.mark.django_db


def revoked_token(client: Client, raw: str) -> str:
    """An access token revoked by its client (RFC 7009): a denied ``jti``."""
    token = str(obtain(client, raw).json()["access_token"])
    assert call(client, token).status_code == 200
    assert form("/auth/revoke", client, raw, token=token).status_code == 200
    refused(call(client, token), "revoked")
    return token


def sql_of(action: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        action()
    return [query["sql"] for query in queries.captured_queries]


def test_a_revocation_is_a_row_first(
    client: Client, signing_key: Any, client_key: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """Published when its transaction commits (the mark is written before too)."""
    key, raw = client_key
    with django_capture_on_commit_callbacks(execute=True):
        revoked_token(client, raw)
    [row] = Revocation.objects.all()
    assert row.lineage == str(key.lineage) and row.name.startswith("j:")
    assert row.published and row.value == revocation.FOREVER


def test_flushall(client: Client, signing_key: Any, client_key: Any, _redis: RedisServer) -> None:
    token = revoked_token(client, client_key[1])
    _redis.client().flushall()
    refused(call(client, token), "revoked")


def test_restart_without_persistence(
    client: Client, signing_key: Any, client_key: Any, _redis: RedisServer
) -> None:
    token = revoked_token(client, client_key[1])
    _redis.stop()
    _redis.start()
    # The first request finds the connection gone (the breaker opens: the database answers),
    # and every later one the store empty (the marks are loaded again).
    for _ in range(3):
        refused(call(client, token), "revoked")
        get_store().breaker.open_until = 0.0


def test_eviction(client: Client, signing_key: Any, client_key: Any, _redis: RedisServer) -> None:
    """``maxmemory`` with ``allkeys-lru``: Redis evicts the lineage's marks with other keys.
    They are one hash, so eviction takes all of them or none, never some."""
    key, raw = client_key
    token = revoked_token(client, raw)
    admin = _redis.client()
    used = int(admin.info("memory")["used_memory"])
    admin.config_set("maxmemory", used + 2 * 1024 * 1024)
    admin.config_set("maxmemory-policy", "allkeys-lru")
    try:
        filler, hashed = "x" * 1024, revocations_key(str(key.lineage))
        # LRU eviction samples keys: write until ours, among the least recently used, goes.
        for batch in range(200):
            if not admin.exists(hashed):
                break
            with admin.pipeline(transaction=False) as pipe:
                for i in range(1_000):
                    pipe.set(f"filler:{batch}:{i}", filler)
                pipe.execute()
        assert admin.exists(hashed) == 0, "not evicted"
        refused(call(client, token), "revoked")
    finally:
        admin.config_set("maxmemory", 0)
        admin.config_set("maxmemory-policy", "noeviction")


def test_a_write_lost_in_a_failover(
    client: Client, signing_key: Any, client_key: Any, _redis: RedisServer
) -> None:
    """A promoted replica holds the marks as the old primary had replicated them: loaded,
    but under the old primary's run_id, and without the last mark. Not trusted: loaded again
    from the database."""
    key, raw = client_key
    first = str(obtain(client, raw).json()["access_token"])
    assert call(client, first).status_code == 200  # the marks are loaded, empty
    admin, hashed = _redis.client(), revocations_key(str(key.lineage))
    replicated = admin.hgetall(hashed)
    assert list(replicated) == [b"e"]
    token = revoked_token(client, raw)
    # What the replica had: everything but the mark, written by another server.
    admin.delete(hashed)
    admin.hset(hashed, "e", "0" * 40)
    refused(call(client, token), "revoked")
    assert call(client, first).status_code == 200
    assert admin.hget(hashed, "e") == replicated[b"e"]  # loaded by this server now


def test_steady_state_makes_no_query(
    client: Client, signing_key: Any, client_key: Any, _redis: RedisServer
) -> None:
    """Loading a lineage's marks costs one query, once; then none per request."""
    token = str(obtain(client, client_key[1]).json()["access_token"])
    assert call(client, token).status_code == 200
    _redis.client().flushall()
    loads = sql_of(lambda: call(client, token))
    assert any("apiauth_revocation" in sql for sql in loads)
    for _ in range(3):
        assert sql_of(lambda: call(client, token)) == []


def test_reset_deletes_limits_only(
    client: Client, signing_key: Any, client_key: Any, admin_client: Client, _redis: RedisServer
) -> None:
    """An operator's reset of a key's limits leaves every revocation in force: a denied
    token, a revoked refresh family, and a "revoked before" moment."""
    key, raw = client_key
    denied = revoked_token(client, raw)
    issued = obtain(client, raw).json()
    assert form("/auth/revoke", client, raw, token=issued["refresh_token"]).status_code == 200
    before = str(obtain(client, raw).json()["access_token"])
    revocation.revoke_issued_before([str(key.lineage)])
    admin = _redis.client()
    assert admin.exists(version_key(str(key.lineage))) == 1
    response = admin_client.post(
        reverse("admin:apiauth_apikey_changelist"),
        {"action": "reset_rate_limits", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "Reset the rate limits of 1 API key" in response.content.decode()
    event = AuditEvent.objects.get(action="reset_limits")
    assert event.details["deleted"] >= 2 and "revocations" in event.reason
    assert admin.exists(version_key(str(key.lineage))) == 1
    assert admin.exists(revocations_key(str(key.lineage))) == 1
    for token in (denied, issued["access_token"], before):
        refused(call(client, token), "revoked")
    assert TokenFamily.objects.filter(revoked_at__isnull=False).count() == 1


def test_a_load_racing_a_revocation_writes_nothing(_redis: RedisServer) -> None:
    """A revocation committed while a load reads the database spoils the load's fence: the
    load writes nothing, and the next one reads the new row."""
    store, lineage = get_store(), "race-lineage"
    key = revocations_key(lineage)

    def read_then_revoked_meanwhile() -> dict[str, float]:
        rows: dict[str, float] = {}  # read before the revocation below commits
        revocation.revoke_issued_before([lineage])
        return rows

    assert store.load_marks(key, read_then_revoked_meanwhile, 60_000) is False
    assert store.revoked(key, (revocation.BEFORE,), time.time() - 5) is None  # not loaded
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() - 5) is True
    assert store.revoked(key, (revocation.BEFORE,), time.time() - 5) is True  # loaded now


def test_marks_missed_during_an_outage_are_written_when_the_store_is_back(
    client: Client, signing_key: Any, client_key: Any
) -> None:
    key, raw = client_key
    token = str(obtain(client, raw).json()["access_token"])
    assert call(client, token).status_code == 200  # the marks are loaded
    store = get_store()
    store.breaker.record_failure(60)  # unreachable, as far as this process knows
    store.down = True  # type: ignore[attr-defined]
    with pytest.raises(StoreUnavailable):
        revocation.revoke_issued_before([str(key.lineage)])
    assert Revocation.objects.get().published is False
    store.breaker.open_until = 0.0
    refused(call(client, token), "revoked")  # the first command back writes it
    assert Revocation.objects.get().published is True
    refused(call(client, token), "revoked")


def test_a_mark_for_an_unloaded_lineage_waits_for_the_load(_redis: RedisServer) -> None:
    lineage = "never-seen"
    revocation.revoke_issued_before([lineage])
    assert _redis.client().exists(revocations_key(lineage)) == 0
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() - 5) is True


def test_a_lineage_with_too_many_marks_is_loaded_again(_redis: RedisServer) -> None:
    """Marks only accumulate in the store; past ``MAX_MARKS`` the hash is dropped and the
    next check reads only the live rows."""
    from apiauth.store import lua

    lineage = "busy"
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), 0) is False  # loaded, empty
    admin = _redis.client()
    key = revocations_key(lineage)
    admin.hset(key, mapping={f"j:{i}": revocation.FOREVER for i in range(lua.MAX_MARKS + 1)})
    revocation.revoke_jti(lineage, "one-more", time.time() + 60)
    assert admin.exists(key) == 0
    assert revocation.is_revoked(lineage, (revocation.jti_mark("one-more"),), 0) is True
    assert admin.hlen(key) == 2  # the epoch and the one live row


@override_settings(
    APIAUTH={"RATELIMIT_BACKEND": "local", "JWT": {"ISSUERS": []}, "ENCRYPTION_KEYS": []}
)
def test_the_local_store_keeps_no_marks_the_database_answers() -> None:
    """Without a shared store, a revocation made in another process could not reach this one:
    nothing is kept, every check asks the database."""
    from apiauth.store import LocalStore

    store = get_store()
    assert isinstance(store, LocalStore)
    assert revocation.is_revoked("local-lineage", (revocation.BEFORE,), time.time() - 5) is False
    # Another process revokes: only the database knows.
    Revocation.objects.create(
        lineage="local-lineage",
        name=revocation.BEFORE,
        value=time.time(),
        expires_at=timezone.now() + datetime.timedelta(hours=1),
    )
    assert revocation.is_revoked("local-lineage", (revocation.BEFORE,), time.time() - 5) is True
    assert store.revoked(revocations_key("local-lineage"), (revocation.BEFORE,), 0) is None


def test_marks_of_another_epoch_are_dropped_by_the_next_revocation(_redis: RedisServer) -> None:
    """A former primary back as primary (a failback) keeps its run_id; the hash it loaded
    before is not trusted, and a revocation deletes it rather than adding to it."""
    lineage, admin = "failback", _redis.client()
    key = revocations_key(lineage)
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), 0) is False  # loaded
    epoch = admin.hget(key, "e")
    run_id = admin.info("server")["run_id"]
    replid = admin.info("replication")["master_replid"]
    assert epoch == f"{run_id}:{replid}".encode()
    admin.hset(key, "e", f"{run_id}:{'0' * 40}")  # this server, another replication history
    revocation.revoke_issued_before([lineage])
    assert admin.exists(key) == 0
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() - 5) is True


def test_a_load_in_progress_is_not_taken_over(_redis: RedisServer) -> None:
    """A hot lineage after a failover: one request loads, the others ask the database meanwhile
    (they never fence it again, which would keep every load from finishing)."""
    store, lineage = get_store(), "hot"
    key = revocations_key(lineage)
    revocation.revoke_issued_before([lineage])
    _redis.client().hset(key, "n", "someone-else:nonce")
    assert store.load_marks(key, dict, 60_000) is False
    assert revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() - 5) is True
    assert _redis.client().hget(key, "n") == b"someone-else:nonce"


def test_a_fence_replicated_to_another_server_finishes_nothing(_redis: RedisServer) -> None:
    """The fence names the server that set it: a load that began before a failover cannot
    finish on the promoted replica and stamp old rows with its epoch."""
    from apiauth.store import lua

    admin, key = _redis.client(), revocations_key("moved")
    admin.hset(key, "n", "old-primary:nonce")
    finished = admin.eval(lua.FINISH_LOAD_SCRIPT, 1, key, "new-primary", "nonce", 60_000)
    assert finished == 0 and admin.hget(key, "e") is None


def test_the_command_publishes_what_was_missed(
    client: Client, signing_key: Any, client_key: Any
) -> None:
    import io

    from django.core.management import call_command

    key, raw = client_key
    token = str(obtain(client, raw).json()["access_token"])
    assert call(client, token).status_code == 200
    store = get_store()
    store.breaker.record_failure(60)
    with pytest.raises(StoreUnavailable):
        revocation.revoke_issued_before([str(key.lineage)])
    store.breaker.open_until = 0.0
    out = io.StringIO()
    call_command("apiauth_publishrevocations", stdout=out)
    assert out.getvalue().strip() == "1 revocation(s) written to the store."
    assert Revocation.objects.get().published is True
    refused(call(client, token), "revoked")
    store.breaker.record_failure(60)
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="unavailable"):
        Revocation.objects.update(published=False)
        call_command("apiauth_publishrevocations")
