"""A person in a real browser (headless Chromium, driven by Playwright) against the live
server: sign in → consent → redirect with a code → token → API call → refresh → revoke the
application from their own page → 401."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from apiauth import authorization
from apiauth.models import Application, SigningKey
from tests.conftest import needs_chromium
from tests.factories import make_user

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_redis"),
    needs_chromium,
]


@pytest.fixture
def server(live_site: str) -> str:
    SigningKey.objects.generate("ES256", state="active")
    return live_site


@pytest.fixture
def page(chromium: Any) -> Any:
    return chromium.new_page()


def test_a_person_signs_in_allows_uses_and_revokes(server: str, page: Any) -> None:
    make_user("pat")
    app, _secret = Application.objects.create_application(
        name="Orders CLI",
        client_type="public",
        redirect_uris=["http://127.0.0.1/callback"],
        scopes=["orders:read", "orders:write"],
        plan="pro",
    )
    verifier = "browser-test-verifier-" + "x" * 30
    port = urlsplit(server).port
    redirect_uri = f"http://127.0.0.1:{port}/callback"
    query = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": redirect_uri,
        "scope": "orders:read",
        "state": "st4te",
        "code_challenge": authorization.s256(verifier),
        "code_challenge_method": "S256",
    }
    page.goto(f"{server}/auth/authorize?{urlencode(query)}")
    assert "/accounts/login/" in page.url
    page.fill("#id_username", "pat")
    page.fill("#id_password", "pw")
    page.click("button[type=submit]")
    page.wait_for_selector("text=Orders CLI")
    assert "orders:read" in page.content()
    page.click("button[name=allow]")
    page.wait_for_url(f"{redirect_uri}?*")
    back = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert back["state"] == "st4te" and back["iss"] == "https://testserver"

    token = requests.post(
        f"{server}/auth/token",
        data={
            "grant_type": "authorization_code",
            "code": back["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "client_id": app.client_id,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    tokens = token.json()

    def call(access: str) -> int:
        headers = {"Authorization": f"Bearer {access}"}
        return requests.get(f"{server}/v1/whoami", headers=headers, timeout=10).status_code

    assert call(tokens["access_token"]) == 200
    refreshed = requests.post(
        f"{server}/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": app.client_id,
        },
        timeout=10,
    ).json()
    assert call(refreshed["access_token"]) == 200

    page.goto(f"{server}/auth/authorizations")
    page.wait_for_selector("text=Orders CLI")
    page.click("button.danger")
    page.wait_for_url("**/auth/authorizations?ended=*")
    assert "Orders CLI" not in page.inner_text("table") if page.query_selector("table") else True
    assert call(refreshed["access_token"]) == 401
