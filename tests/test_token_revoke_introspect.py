"""Token revocation (RFC 7009) and introspection (RFC 7662) over HTTP."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apiauth.models import APIKey, AuditEvent, RefreshToken, SigningKey, TokenFamily
from apiauth.store import reset_stores
from tests.factories import make_key, make_user
from tests.utils import (
    call,
    forge,
    form,
    oauth_error,
    obtain,
    refresh,
    refused,
)

pytestmark = pytest.mark.django_db


class TestRevokeAndIntrospect:
    @pytest.fixture
    def server(self) -> tuple[APIKey, str]:
        return make_key(name="resource server", scopes=["tokens:introspect"], plan="pro")

    def introspect(self, client: Client, server: Any, token: str) -> dict[str, Any]:
        response = form("/auth/introspect", client, server[1], token=token)
        assert response.status_code == 200, response.content
        assert response["Cache-Control"] == "no-store"
        body: dict[str, Any] = response.json()
        return body

    def test_introspect_access_and_refresh(
        self, client: Client, signing_key: Any, client_key: Any, server: Any
    ) -> None:
        issued = obtain(client, client_key[1]).json()
        active = self.introspect(client, server, issued["access_token"])
        assert active["active"] is True and active["client_id"] == client_key[0].public_id
        assert active["scope"] == "orders:read orders:write"
        refresh = self.introspect(client, server, issued["refresh_token"])
        assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
        assert self.introspect(client, server, "garbage") == {"active": False}

    def test_introspection_bodies(
        self, client: Client, signing_key: SigningKey, client_key: Any, server: Any
    ) -> None:
        """RFC 7662 §2.2: the token's own claims, the scopes its key still grants, and for a
        refresh token its client, scopes and lifetime."""
        from apiauth.tokens import find_refresh_token

        key, raw = client_key
        now = int(time.time())
        claims = {"client_id": key.public_id, "sub": key.public_id, "nbf": now, "jti": "j9"}
        token = forge(signing_key, claims={**claims, "scope": "orders:read admin"})
        expected = jwt.decode(token, options={"verify_signature": False})
        names = {"client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti", "scope"}
        assert set(expected) == names
        assert self.introspect(client, server, token) == {
            "active": True,
            "token_type": "Bearer",
            **expected,
            "scope": "orders:read",  # what the key still grants
        }
        refresh_token = obtain(client, raw).json()["refresh_token"]
        found = find_refresh_token(refresh_token)
        assert found is not None
        assert self.introspect(client, server, refresh_token) == {
            "active": True,
            "token_type": "refresh_token",
            "client_id": key.public_id,
            "scope": "orders:read orders:write",
            "exp": int(found.expires_at.timestamp()),
            "iat": int(found.created_at.timestamp()),
        }

    def test_a_used_refresh_token_is_inactive(
        self, client: Client, signing_key: Any, client_key: Any, server: Any
    ) -> None:
        first = obtain(client, client_key[1]).json()["refresh_token"]
        assert refresh(client, client_key[1], first).status_code == 200
        assert self.introspect(client, server, first) == {"active": False}

    def test_a_refresh_token_is_inactive_at_its_expiry(
        self, client: Client, signing_key: Any, client_key: Any, server: Any, monkeypatch: Any
    ) -> None:
        """At the very instant the token endpoint starts refusing it (the clock frozen)."""
        import types

        from django.utils import timezone

        from apiauth.views import tokens as views

        refresh_token = obtain(client, client_key[1]).json()["refresh_token"]
        frozen = timezone.now()
        RefreshToken.objects.update(expires_at=frozen)
        monkeypatch.setattr(views, "timezone", types.SimpleNamespace(now=lambda: frozen))
        assert self.introspect(client, server, refresh_token) == {"active": False}

    def test_the_database_answers_while_the_marks_cannot_be_read(
        self,
        client: Client,
        signing_key: Any,
        client_key: Any,
        server: Any,
        redis_server: Any,
        settings: Any,
    ) -> None:
        """The database holds every revocation: with Redis down it says which token is
        revoked and which is not."""
        revoked = obtain(client, client_key[1]).json()["access_token"]
        live = obtain(client, client_key[1]).json()["access_token"]
        assert form("/auth/revoke", client, client_key[1], token=revoked).status_code == 200
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "open"}
        redis_server.stop()
        try:
            with CaptureQueriesContext(connection) as queries:
                body = self.introspect(client, server, revoked)
            sql = [query["sql"] for query in queries.captured_queries]
            active = self.introspect(client, server, live)
        finally:
            redis_server.start()
            reset_stores()
        assert body == {"active": False}
        assert any("apiauth_revocation" in query for query in sql), sql
        assert active["active"] is True

    @pytest.mark.parametrize("kind", ["access_token", "refresh_token"])
    def test_introspection_follows_the_key(
        self, client: Client, signing_key: Any, server: Any, kind: str
    ) -> None:
        """What the key no longer grants, or an owner no longer active, shows at once."""
        user = make_user("carol")
        key, raw = make_key(owner=user, scopes=["orders:read", "orders:write"], plan="pro")
        issued = obtain(client, raw).json()
        key.scopes = ["orders:read"]
        key.save()
        assert call(client, issued["access_token"]).json()["scopes"] == ["orders:read"]
        assert self.introspect(client, server, issued[kind])["scope"] == "orders:read"
        user.is_active = False
        user.save()
        assert self.introspect(client, server, issued[kind]) == {"active": False}

    def test_introspection_needs_its_scope(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        response = form("/auth/introspect", client, client_key[1], token="x")
        oauth_error(
            response, 403, "insufficient_scope", "Introspection needs the tokens:introspect scope."
        )

    @pytest.mark.parametrize(
        ("path", "data"),
        [
            ("/auth/token", {"grant_type": "refresh_token"}),
            ("/auth/token", {"grant_type": "refresh_token", "refresh_token": ""}),
            ("/auth/revoke", {}),
            ("/auth/revoke", {"token": ""}),
            ("/auth/introspect", {}),
            ("/auth/introspect", {"token": ""}),
        ],
    )
    def test_a_required_parameter_missing_or_empty(
        self, client: Client, signing_key: Any, server: Any, path: str, data: dict[str, str]
    ) -> None:
        response = form(path, client, server[1], **data)
        oauth_error(response, 400, "invalid_request", "A required parameter is missing.")

    def test_revoke_access_token_by_jti(
        self, client: Client, signing_key: Any, client_key: Any, server: Any
    ) -> None:
        issued = obtain(client, client_key[1]).json()
        response = form("/auth/revoke", client, client_key[1], token=issued["access_token"])
        assert response.status_code == 200
        assert response.content == b""
        refused(call(client, issued["access_token"]), "revoked")
        assert self.introspect(client, server, issued["access_token"]) == {"active": False}
        # Another token of the same client is unaffected.
        other = obtain(client, client_key[1]).json()["access_token"]
        assert call(client, other).status_code == 200

    def test_revoke_refresh_token_ends_family(
        self, client: Client, signing_key: Any, client_key: Any, server: Any
    ) -> None:
        issued = obtain(client, client_key[1]).json()
        response = form("/auth/revoke", client, client_key[1], token=issued["refresh_token"])
        assert response.status_code == 200
        family = TokenFamily.objects.get()
        assert family.revoked_reason == "revoked by its client"
        event = AuditEvent.objects.get(action="revoke")
        assert (event.credential_kind, event.credential_id) == (family.kind, str(family.pk))
        assert (event.reason, event.client_ip) == ("RFC 7009", "127.0.0.1")
        assert self.introspect(client, server, issued["refresh_token"]) == {"active": False}
        refused(call(client, issued["access_token"]), "revoked")

    def test_revoke_unknown_and_foreign(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        issued = obtain(client, client_key[1]).json()
        _other, other_raw = make_key(name="other", plan="pro")
        assert form("/auth/revoke", client, other_raw, token="unknown").status_code == 200
        assert (
            form("/auth/revoke", client, other_raw, token=issued["access_token"]).status_code == 200
        )
        assert (
            form("/auth/revoke", client, other_raw, token=issued["refresh_token"]).status_code
            == 200
        )
        assert call(client, issued["access_token"]).status_code == 200

    def test_revoke_refresh_token_with_redis_down(
        self,
        client: Client,
        signing_key: Any,
        client_key: Any,
        redis_server: Any,
        settings: Any,
    ) -> None:
        """The refresh tokens end and the revocations are saved; their marks cannot be
        written, so the client is told to try again. Nothing comes undone meanwhile."""
        issued = obtain(client, client_key[1]).json()
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "open"}
        redis_server.stop()
        try:
            response = form("/auth/revoke", client, client_key[1], token=issued["refresh_token"])
            detail = "Revocation is unavailable; try again."
            oauth_error(response, 503, "temporarily_unavailable", detail)
            response = form("/auth/revoke", client, client_key[1], token=issued["access_token"])
            oauth_error(response, 503, "temporarily_unavailable", detail)
        finally:
            redis_server.start()
            reset_stores()  # close the circuit breaker the outage opened
        assert not TokenFamily.objects.live().exists()
        # The database holds both revocations: the restarted Redis has no marks, and the
        # first request loads them.
        refused(call(client, issued["access_token"]), "revoked")
        assert (
            form("/auth/revoke", client, client_key[1], token=issued["refresh_token"]).status_code
            == 200
        )
        refused(call(client, issued["access_token"]), "revoked")
