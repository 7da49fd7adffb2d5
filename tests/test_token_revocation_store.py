"""Revocation marks in the store: denied tokens, families, "revoked before" moments."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import jwt
import pytest
from django.test import Client, override_settings

from apiauth import revocation
from apiauth.store import reset_stores
from apiauth.store.keys import revocations_key
from tests.factories import make_key, make_user
from tests.utils import (
    audited,
    call,
    obtain,
    refused,
)

pytestmark = pytest.mark.django_db


class TestRevocationStore:
    def test_redis_down_asks_the_database(
        self, client: Client, signing_key: Any, client_key: Any, redis_server: Any
    ) -> None:
        key, raw = client_key
        revoked = obtain(client, raw).json()["access_token"]
        revocation.revoke_issued_before([str(key.lineage)])
        time.sleep(0.002)
        live = obtain(client, raw).json()["access_token"]
        redis_server.stop()
        try:
            refusal, response = call(client, revoked), call(client, live)
        finally:
            redis_server.start()
            reset_stores()
        refused(refusal, "revoked")
        assert response.status_code == 200, response.content

    def test_redis_down_fails_closed(
        self,
        client: Client,
        signing_key: Any,
        client_key: Any,
        redis_server: Any,
        settings: Any,
    ) -> None:
        token = obtain(client, client_key[1]).json()["access_token"]
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "REVOCATION_FAILURE_MODE": "closed"},
        }
        redis_server.stop()
        try:
            response = call(client, token)
        finally:
            redis_server.start()
        assert response.status_code == 503
        assert response.json()["code"] == "revocation_check_unavailable"
        assert "Retry-After" in response

    def test_redis_down_open_mode(
        self,
        client: Client,
        signing_key: Any,
        client_key: Any,
        redis_server: Any,
        settings: Any,
        caplog: Any,
    ) -> None:
        token = obtain(client, client_key[1]).json()["access_token"]
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "REVOCATION_FAILURE_MODE": "open"},
        }
        redis_server.stop()
        try:
            response = call(client, token)
        finally:
            redis_server.start()
        assert response.status_code == 200, response.content
        assert "token revocation unchecked: the store is unavailable" in caplog.messages

    def test_revoked_before_mark(self, client: Client, signing_key: Any, client_key: Any) -> None:
        from apiauth import revocation

        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        revocation.revoke_issued_before([str(key.lineage)])
        refused(call(client, token), "revoked")

    def test_revoked_while_the_keys_copy_went_stale(
        self, client: Client, signing_key: Any, client_key: Any, caplog: Any
    ) -> None:
        """The key changed and the token was revoked: the throttle finds the copy stale, the
        key is read again, and Redis is asked about the token's marks before the view runs."""
        from apiauth import cache

        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        assert call(client, token).status_code == 200
        revocation.revoke_issued_before([str(key.lineage)])
        cache.invalidate([str(key.lineage)])
        body = refused(call(client, token), "revoked")
        assert body["detail"] == "This token has been revoked."
        [event] = audited(caplog, "revoked")
        assert (event["credential_id"], event["client_ip"]) == (key.public_id, "127.0.0.1")

    def test_revoked_on_a_view_without_our_throttle(
        self, client: Client, signing_key: Any, client_key: Any, caplog: Any
    ) -> None:
        """There the authentication class asks Redis itself (no throttle round trip to ride),
        and refuses as the throttle would, audited."""
        from apiauth import revocation

        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        assert call(client, token, "/v1/whoami").status_code == 200
        revocation.revoke_issued_before([str(key.lineage)])
        body = refused(call(client, token, "/v1/whoami"), "revoked")
        assert body["detail"] == "This token has been revoked."
        [event] = audited(caplog, "revoked")
        assert (event["credential_kind"], event["credential_id"]) == ("jwt", key.public_id)
        assert event["client_ip"] == "127.0.0.1"

    def test_revoked_before_to_the_millisecond(
        self, client: Client, signing_key: Any, client_key: Any, monkeypatch: Any
    ) -> None:
        """``iat`` is whole seconds; a token issued in the same second as the mark, but after
        it, is not revoked (its jti holds the millisecond); one issued before it is."""
        from apiauth import revocation

        key, raw = client_key
        second = int(time.time())
        monkeypatch.setattr(time, "time", lambda: second + 0.1)
        before = obtain(client, raw).json()["access_token"]
        revocation.revoke_issued_before([str(key.lineage)], when=second + 0.2)
        monkeypatch.setattr(time, "time", lambda: second + 0.6)
        after = obtain(client, raw).json()["access_token"]
        monkeypatch.undo()
        assert [
            jwt.decode(t, options={"verify_signature": False})["iat"] for t in (before, after)
        ] == [second, second]
        refused(call(client, before), "revoked")
        assert call(client, after).status_code == 200

    def test_user_revocation(self, client: Client, signing_key: Any) -> None:
        from apiauth import revocation

        user = make_user("bob")
        key, raw = make_key(owner=user)
        token = obtain(client, raw).json()["access_token"]
        assert call(client, token).json()["owner"] == "bob"
        revocation.revoke_user(user)
        refused(call(client, token), "revoked")
        # The user's own lineage too: their identity provider's tokens name them, not a key.
        for lineage in (revocation.user_lineage(user.pk), str(key.lineage)):
            assert revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() - 1)
            assert not revocation.is_revoked(lineage, (revocation.BEFORE,), time.time() + 1)

    def test_revocations_live_as_long_as_the_tokens_they_deny(self, redis_server: Any) -> None:
        from apiauth.conf import conf
        from apiauth.models import Revocation

        def kept_for(lineage: str, name: str) -> float:
            row = Revocation.objects.get(lineage=lineage, name=name)
            return row.expires_at.timestamp() - time.time()

        lifetime = int(conf.JWT["MAX_TOKEN_LIFETIME"]) + int(conf.JWT["LEEWAY"])
        assert revocation.mark_ttl_ms() == lifetime * 1000
        revocation.revoke_family("lineage-1", "sid-1")
        assert lifetime - 2 < kept_for("lineage-1", revocation.family_mark("sid-1")) <= lifetime
        # One token: until it expires, plus the leeway a verifier grants.
        leeway = int(conf.JWT["LEEWAY"])
        revocation.revoke_jti("lineage-1", "jti-1", time.time() + 100)
        assert (
            100 + leeway - 2 < kept_for("lineage-1", revocation.jti_mark("jti-1")) <= 100 + leeway
        )
        # "Issued before" a given moment, to the millisecond, rounded up.
        revocation.revoke_issued_before(["lineage-1"], when=1_700_000_000.0001)
        before = Revocation.objects.get(lineage="lineage-1", name=revocation.BEFORE)
        assert before.value == 1_700_000_000.001
        # An earlier moment never takes a later one back.
        revocation.revoke_issued_before(["lineage-1"], when=1_600_000_000)
        before.refresh_from_db()
        assert before.value == 1_700_000_000.001
        # Expired beyond the leeway: nothing to deny, nothing stored.
        revocation.revoke_jti("lineage-1", "jti-2", time.time() - leeway - 1)
        assert not Revocation.objects.filter(name=revocation.jti_mark("jti-2")).exists()
        # In the store, the lineage's marks live as long as the longest of them.
        admin = redis_server.client()
        assert revocation.is_revoked("lineage-1", (revocation.jti_mark("jti-1"),), time.time())
        key = revocations_key("lineage-1")
        assert lifetime * 1000 - 2000 < admin.pttl(key) <= lifetime * 1000

    def test_mark_names(self) -> None:
        assert revocation.BEFORE == "b"
        assert revocation.jti_mark("j") == "j:" + hashlib.sha256(b"j").hexdigest()[:32]
        assert revocation.family_mark("s") == "s:" + hashlib.sha256(b"s").hexdigest()[:32]
        marks = revocation.marks_for({"jti": "j", "sid": "s"})
        assert marks == ("b", revocation.jti_mark("j"), revocation.family_mark("s"))
        for odd in ({"jti": 5, "sid": None}, {"jti": None, "sid": 5}, {}):
            assert revocation.marks_for(odd) == marks[:1]
        # Every mark of a lineage lives in one hash under its hash tag (one cluster slot with
        # its buckets), named after the prefix in force.
        assert revocations_key("3f1c9a") == "rl:{k3f1c9a}:revoked"
        with override_settings(APIAUTH={"RATELIMIT_KEY_PREFIX": "other:"}):
            assert revocations_key("3f1c9a") == "other:{k3f1c9a}:revoked"
