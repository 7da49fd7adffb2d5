"""An independent OAuth client library (authlib's ``OAuth2Session``) drives the flows as a
real client would — discovery, the authorization code flow with PKCE, refresh, and client
credentials with ``client_secret_basic`` and ``client_secret_post`` — its HTTP answered by the
app in-process (``tests.utils.DjangoAdapter``)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from django.test import Client

from apiauth.models import Application
from tests.factories import make_user
from tests.utils import DjangoAdapter

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis", "signing_key")]

SERVER = "http://testserver"


def session(client_id: str, secret: str | None = None, **kwargs: Any) -> OAuth2Session:
    oauth = OAuth2Session(client_id, secret, **kwargs)
    oauth.mount(SERVER, DjangoAdapter())
    return oauth


def metadata() -> dict[str, Any]:
    plain = requests.Session()
    plain.mount(SERVER, DjangoAdapter())  # type: ignore[arg-type]
    response = plain.get(f"{SERVER}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    return dict(response.json())


def test_authorization_code_with_pkce() -> None:
    app, _secret = Application.objects.create_application(
        name="CLI",
        client_type="public",
        first_party=True,
        redirect_uris=["http://127.0.0.1/callback"],
        scopes=["orders:read"],
        plan="pro",
    )
    endpoints = metadata()
    oauth = session(
        app.client_id,
        redirect_uri="http://127.0.0.1:8765/callback",
        scope="orders:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
    )
    verifier = "v" * 20 + "ERIFIER-0123456789-abcdefghijklmnop"
    url, state = oauth.create_authorization_url(
        endpoints["authorization_endpoint"], code_verifier=verifier
    )
    assert "code_challenge=" + create_s256_code_challenge(verifier) in url
    # The person, in their browser, signed in.
    browser = Client()
    browser.force_login(make_user("pat"))
    answer = browser.get(url.replace(SERVER, ""))
    assert answer.status_code == 302, answer.content
    assert f"state={state}" in answer["Location"]
    token = oauth.fetch_token(
        endpoints["token_endpoint"],
        authorization_response=answer["Location"],
        code_verifier=verifier,
    )
    assert token["token_type"] == "Bearer" and token["scope"] == "orders:read"
    api = oauth.get(f"{SERVER}/v1/whoami")
    assert api.status_code == 200 and api.json()["user"] == "pat"
    refreshed = oauth.refresh_token(endpoints["token_endpoint"])
    assert refreshed["access_token"] != token["access_token"]
    assert oauth.get(f"{SERVER}/v1/ping").status_code == 200
    revoked = oauth.revoke_token(endpoints["revocation_endpoint"], refreshed["refresh_token"])
    assert revoked.status_code == 200
    assert oauth.get(f"{SERVER}/v1/ping").status_code == 401


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_client_credentials(method: str) -> None:
    app, secret = Application.objects.create_application(
        name="Batch",
        client_type="confidential",
        grant_types=["client_credentials"],
        scopes=["orders:read"],
        plan="pro",
    )
    token_endpoint = metadata()["token_endpoint"]
    oauth = session(app.client_id, secret, token_endpoint_auth_method=method)
    token = oauth.fetch_token(token_endpoint, grant_type="client_credentials")
    assert token["scope"] == "orders:read"
    assert oauth.get(f"{SERVER}/v1/ping").status_code == 200
    wrong = session(app.client_id, secret + "x", token_endpoint_auth_method=method)
    with pytest.raises(Exception, match="invalid_client"):
        wrong.fetch_token(token_endpoint, grant_type="client_credentials")
