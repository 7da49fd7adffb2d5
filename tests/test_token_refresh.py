"""Refresh tokens: rotation on every use, families, reuse detection."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client

from apiauth.models import APIKey, AuditEvent, RefreshToken, SigningKey, TokenFamily
from tests.factories import make_key
from tests.utils import (
    call,
    oauth_error,
    obtain,
    refresh,
    refused,
)

pytestmark = pytest.mark.django_db


class TestRefresh:
    def test_rotation_and_reuse(self, client: Client, signing_key: Any, client_key: Any) -> None:
        key, raw = client_key
        first = obtain(client, raw).json()
        second = refresh(client, raw, first["refresh_token"])
        assert second.status_code == 200, second.content
        pair = second.json()
        assert pair["refresh_token"] != first["refresh_token"]
        assert call(client, pair["access_token"]).status_code == 200
        assert pair["token_type"] == "Bearer" and pair["scope"] == "orders:read orders:write"
        assert pair["expires_in"] == 900  # ACCESS_TOKEN_LIFETIME: the key does not expire
        family = TokenFamily.objects.get()
        assert family.refreshed_at is not None and family.revoked_at is None
        # The spent token again: the family ends, with every access token it issued.
        reused = refresh(client, raw, first["refresh_token"])
        oauth_error(reused, 400, "invalid_grant", "The refresh token was already used.")
        family.refresh_from_db()
        assert family.revoked_at is not None and family.revoked_reason == "refresh token reused"
        event = AuditEvent.objects.get(action="reuse", credential_id=str(family.id))
        assert event.reason == "a spent refresh token was presented"
        refused(call(client, pair["access_token"]), "revoked")
        refused(call(client, first["access_token"]), "revoked")
        after = refresh(client, raw, pair["refresh_token"])
        oauth_error(after, 400, "invalid_grant", "The refresh token's grant has ended.")

    @pytest.mark.django_db(transaction=True)
    def test_reuse_under_atomic_requests_stays_revoked(
        self, client: Client, signing_key: Any, client_key: Any, monkeypatch: Any
    ) -> None:
        """With ``ATOMIC_REQUESTS`` the refusal of a reused token would roll back the
        revocation it made: the OAuth views never run in a request's transaction."""
        monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
        key, raw = client_key
        first = obtain(client, raw).json()
        pair = refresh(client, raw, first["refresh_token"]).json()
        reused = refresh(client, raw, first["refresh_token"])
        oauth_error(reused, 400, "invalid_grant", "The refresh token was already used.")
        assert TokenFamily.objects.get().revoked_at is not None
        refused(call(client, pair["access_token"]), "revoked")

    def test_scopes_only_narrow(self, client: Client, signing_key: Any, client_key: Any) -> None:
        key, raw = client_key
        first = obtain(client, raw, scope="orders:read").json()
        wider = refresh(client, raw, first["refresh_token"], scope="orders:write")
        oauth_error(wider, 400, "invalid_scope", "The client may not have these scopes.")

    def test_reuse_ends_only_its_own_family(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        _key, raw = client_key
        first, second = obtain(client, raw).json(), obtain(client, raw).json()
        assert refresh(client, raw, first["refresh_token"]).status_code == 200
        oauth_error(refresh(client, raw, first["refresh_token"]), 400, "invalid_grant")
        refused(call(client, first["access_token"]), "revoked")
        assert call(client, second["access_token"]).status_code == 200
        assert refresh(client, raw, second["refresh_token"]).status_code == 200
        assert TokenFamily.objects.live().count() == 1

    def test_a_family_ends_once(self, signing_key: Any, client_key: Any) -> None:
        """Ending it again changes nothing: the first time and reason stand."""
        from apiauth import tokens

        tokens.client_credentials(client_key[0], None)
        family = TokenFamily.objects.get()
        assert tokens.revoke_family(family, reason="r" * 600) is True
        ended = TokenFamily.objects.get()
        assert ended.revoked_reason == "r" * 500  # the column's length
        assert family.revoked_at == ended.revoked_at and family.revoked_reason == "r" * 500
        assert tokens.revoke_family(family, reason="again") is False
        assert TokenFamily.objects.get().revoked_reason == "r" * 500
        assert TokenFamily.objects.get().revoked_at == ended.revoked_at

    def test_other_client(self, client: Client, signing_key: Any, client_key: Any) -> None:
        first = obtain(client, client_key[1]).json()
        _other, other_raw = make_key(name="other")
        response = refresh(client, other_raw, first["refresh_token"])
        oauth_error(response, 400, "invalid_grant", "The refresh token is invalid.")

    @pytest.mark.parametrize("value", ["nope", "apkrt_" + "a" * 43, "x" * 5000])
    def test_unknown_refresh_token(
        self, client: Client, signing_key: Any, client_key: Any, value: str
    ) -> None:
        response = refresh(client, client_key[1], value)
        oauth_error(response, 400, "invalid_grant", "The refresh token is invalid.")

    def test_family_lifetime_cap(self, client: Client, signing_key: Any, client_key: Any) -> None:
        from django.utils import timezone

        first = obtain(client, client_key[1]).json()
        TokenFamily.objects.update(expires_at=timezone.now())
        response = refresh(client, client_key[1], first["refresh_token"])
        oauth_error(response, 400, "invalid_grant", "The refresh token's grant has ended.")
        # Nothing was spent: the refusal came before.
        assert not RefreshToken.objects.filter(used_at__isnull=False).exists()

    def test_expired_refresh_token(self, client: Client, signing_key: Any, client_key: Any) -> None:
        """The family lives on, but this token's own lifetime is over: refused, and not taken
        for reuse when presented again (the refusal rolled its spending back)."""
        from django.utils import timezone

        first = obtain(client, client_key[1]).json()
        RefreshToken.objects.update(expires_at=timezone.now())
        response = refresh(client, client_key[1], first["refresh_token"])
        oauth_error(response, 400, "invalid_grant", "The refresh token has expired.")
        again = refresh(client, client_key[1], first["refresh_token"])
        oauth_error(again, 400, "invalid_grant", "The refresh token has expired.")
        assert not RefreshToken.objects.filter(used_at__isnull=False).exists()
        assert TokenFamily.objects.get().revoked_at is None

    def test_a_refresh_token_ends_at_its_expiry(
        self, client: Client, signing_key: Any, client_key: Any, monkeypatch: Any
    ) -> None:
        """At the very instant of its expiry it is refused (the clock frozen in tokens)."""
        import types

        from django.utils import timezone

        from apiauth import tokens

        first = obtain(client, client_key[1]).json()
        frozen = timezone.now()
        RefreshToken.objects.update(expires_at=frozen)
        monkeypatch.setattr(tokens, "timezone", types.SimpleNamespace(now=lambda: frozen))
        response = refresh(client, client_key[1], first["refresh_token"])
        oauth_error(response, 400, "invalid_grant", "The refresh token has expired.")

    def test_a_refresh_writes_only_its_time(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        """A revocation landing while a refresh runs is not overwritten by the refresh's save
        (it writes ``refreshed_at`` alone); the next refresh is refused."""
        from django.db.models.signals import pre_save

        first = obtain(client, client_key[1]).json()

        def revoke_meanwhile(sender: Any, instance: TokenFamily, **kwargs: Any) -> None:
            TokenFamily.objects.filter(pk=instance.pk).update(
                revoked_at=instance.created_at, revoked_reason="meanwhile"
            )

        pre_save.connect(revoke_meanwhile, sender=TokenFamily)
        try:
            second = refresh(client, client_key[1], first["refresh_token"])
        finally:
            pre_save.disconnect(revoke_meanwhile, sender=TokenFamily)
        assert second.status_code == 200
        family = TokenFamily.objects.get()
        assert family.revoked_reason == "meanwhile" and family.refreshed_at is not None
        response = refresh(client, client_key[1], second.json()["refresh_token"])
        oauth_error(response, 400, "invalid_grant", "The refresh token's grant has ended.")

    def test_revoking_the_key_ends_families_and_tokens(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        key, raw = client_key
        first = obtain(client, raw).json()
        assert call(client, first["access_token"]).status_code == 200
        key.revoke(reason="leaked")
        refused(call(client, first["access_token"]), "revoked")
        assert not TokenFamily.objects.live().exists()

    def test_rolled_key_tokens_end_with_the_grace(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        import datetime

        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        APIKey.objects.roll(key, datetime.timedelta(0))
        refused(call(client, token), "expired")

    def test_no_signing_key_spends_nothing(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        """A 503 says "try again": the retry must not count as reuse of a spent token."""
        _key, raw = client_key
        first = obtain(client, raw).json()
        SigningKey.objects.revoke(signing_key, "rotation gone wrong")
        response = refresh(client, raw, first["refresh_token"])
        oauth_error(response, 503, "temporarily_unavailable")
        assert not RefreshToken.objects.filter(used_at__isnull=False).exists()
        oauth_error(obtain(client, raw), 503, "temporarily_unavailable")
        assert TokenFamily.objects.count() == 1  # the failed exchange left no family behind
        SigningKey.objects.generate("ES256", state="active")
        assert refresh(client, raw, first["refresh_token"]).status_code == 200
        assert TokenFamily.objects.get().revoked_at is None

    def test_reuse_with_redis_down(
        self,
        client: Client,
        signing_key: Any,
        client_key: Any,
        redis_server: Any,
        settings: Any,
        caplog: Any,
    ) -> None:
        """The family ends in the database; its access tokens' mark waits for Redis (logged)."""
        _key, raw = client_key
        first = obtain(client, raw).json()
        assert refresh(client, raw, first["refresh_token"]).status_code == 200
        settings.APIAUTH = {**settings.APIAUTH, "RATELIMIT_FAILURE_MODE": "open"}
        redis_server.stop()
        try:
            oauth_error(refresh(client, raw, first["refresh_token"]), 400, "invalid_grant")
        finally:
            redis_server.start()
        family = TokenFamily.objects.get()
        assert family.revoked_at is not None
        assert (
            f"family {family.pk} revoked for reuse, but its access tokens live until they "
            "expire: Redis is unavailable"
        ) in caplog.messages
