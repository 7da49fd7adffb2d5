"""The OAuth 2.0 token endpoint: client credentials, form bodies, errors."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from apiauth.models import RefreshToken, SigningKey
from tests.factories import make_key
from tests.utils import (
    FORM,
    call,
    form,
    oauth_error,
    obtain,
    refresh,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/auth/token", "/auth/revoke", "/auth/introspect"])
def test_form_bodies_in_another_charset_are_invalid_requests(
    client: Client, signing_key: SigningKey, path: str
) -> None:
    """Decoded as unicode_escape, this body would hold a lone surrogate (no text)."""
    from urllib.parse import urlencode

    _key, raw = make_key(scopes=["tokens:introspect"], plan="pro")
    name = "refresh_token" if path == "/auth/token" else "token"
    body = urlencode({"grant_type": "refresh_token", name: "apkrt_\\ud800" + "a" * 40})
    response = client.post(
        path, body, content_type=FORM + "; charset=unicode_escape", HTTP_X_API_KEY=raw
    )
    assert oauth_error(response, 400, "invalid_request")["detail"] == (
        "Form bodies must be encoded in UTF-8."
    )


def test_oversized_form_bodies_are_413(client: Client, client_key: Any) -> None:
    response = form("/auth/token", client, client_key[1], grant_type="x" * 70_000)
    assert response.status_code == 413


class TestTokenEndpoint:
    def test_scope_must_be_a_subset(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        response = obtain(client, client_key[1], scope="orders:read admin")
        oauth_error(response, 400, "invalid_scope", "The client may not have these scopes.")

    def test_malformed_scope(self, client: Client, signing_key: Any, client_key: Any) -> None:
        response = obtain(client, client_key[1], scope="a  b")
        oauth_error(response, 400, "invalid_scope", "The scope parameter is malformed.")

    def test_no_scope_asked_gets_the_keys(
        self, client: Client, signing_key: Any, client_key: Any
    ) -> None:
        assert obtain(client, client_key[1]).json()["scope"] == "orders:read orders:write"

    def test_unsupported_grant(self, client: Client, signing_key: Any, client_key: Any) -> None:
        response = form("/auth/token", client, client_key[1], grant_type="password")
        oauth_error(response, 400, "unsupported_grant_type", "This grant type is not supported.")

    def test_refresh_grant_without_refresh_tokens(
        self, client: Client, signing_key: Any, client_key: Any, settings: Any
    ) -> None:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "REFRESH_TOKENS": False},
        }
        response = refresh(client, client_key[1], "apkrt_" + "a" * 43)
        detail = "Refresh tokens are not issued here."
        oauth_error(response, 400, "unsupported_grant_type", detail)

    def test_missing_grant_type(self, client: Client, signing_key: Any, client_key: Any) -> None:
        oauth_error(form("/auth/token", client, client_key[1]), 400, "invalid_request")

    def test_repeated_parameter(self, client: Client, signing_key: Any, client_key: Any) -> None:
        response = client.post(
            "/auth/token",
            "grant_type=client_credentials&scope=a&scope=b",
            content_type=FORM,
            HTTP_X_API_KEY=client_key[1],
        )
        oauth_error(response, 400, "invalid_request", "A parameter was sent more than once.")

    def test_no_client_authentication(self, client: Client, signing_key: Any) -> None:
        response = form("/auth/token", client, None, grant_type="client_credentials")
        oauth_error(response, 401, "invalid_client", "Authenticate with your API key.")
        assert response["WWW-Authenticate"].startswith("Api-Key")
        # Throttled before the refusal, as every view with HasScopes: refusals are limited too.
        assert response["RateLimit"].startswith('"burst";r=5;')  # a POST costs 5

    def test_bad_client_key(self, client: Client, signing_key: Any, client_key: Any) -> None:
        """The authentication's own refusal, told as ``invalid_client``."""
        key, raw = client_key
        key.revoke(reason="test")
        response = obtain(client, raw)
        oauth_error(response, 401, "invalid_client", "This credential has been revoked.")
        assert response["WWW-Authenticate"].startswith('Api-Key realm="')

    def test_no_active_signing_key(self, client: Client, client_key: Any) -> None:
        response = obtain(client, client_key[1])
        detail = "No signing key is active; try again later."
        oauth_error(response, 503, "temporarily_unavailable", detail)

    def test_json_body_is_refused(self, client: Client, signing_key: Any, client_key: Any) -> None:
        response = client.post(
            "/auth/token",
            {"grant_type": "client_credentials"},
            content_type="application/json",
            HTTP_X_API_KEY=client_key[1],
        )
        assert response.status_code == 415

    def test_rate_limited_like_any_view(self, client: Client, signing_key: Any) -> None:
        _key, raw = make_key(plan="free")  # a burst of 10; a POST costs 5
        statuses = [obtain(client, raw).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]

    def test_tokens_share_the_keys_limits(self, client: Client, signing_key: Any) -> None:
        # Minting tokens must not multiply a client's limits: the key's bucket is debited.
        _key, raw = make_key(plan="free")
        token = obtain(client, raw).json()["access_token"]  # 5 of 10 units
        statuses = [call(client, token).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        assert client.get("/v1/ping", HTTP_X_API_KEY=raw).status_code == 429

    def test_no_token_in_logs_or_database(
        self, client: Client, signing_key: Any, client_key: Any, caplog: Any
    ) -> None:
        body = obtain(client, client_key[1]).json()

        assert not RefreshToken.objects.filter(token_hash=body["refresh_token"]).exists()
        assert body["refresh_token"] not in caplog.text and body["access_token"] not in caplog.text


def test_errors_say_what_went_wrong(client_key: Any, settings: Any) -> None:
    from apiauth import tokens

    assert str(tokens.GrantError("invalid_grant", "The refresh token is invalid.")) == (
        "The refresh token is invalid."
    )
    settings.APIAUTH = {**settings.APIAUTH, "JWT": {**settings.APIAUTH["JWT"], "ISSUERS": []}}
    message = 'No issuer in APIAUTH["JWT"]["ISSUERS"] has KEYS "local".'
    with pytest.raises(tokens.NoSigningKey) as raised:
        tokens.access_token(client_key[0], [])
    assert str(raised.value) == message
