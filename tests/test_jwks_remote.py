"""An external identity provider: its JWKS served by a real local HTTP server, outage included."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import Client, override_settings

from apiauth import issuers, jose, revocation
from tests.factories import make_user

pytestmark = pytest.mark.django_db

ISS = "https://idp.example/"
AUD = "https://api.example"


def _raw(status: str, body: bytes, length: int | None = None) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body) if length is None else length}\r\n"
    return head.encode() + b"Cache-Control: max-age=600\r\n\r\n" + body


BROKEN = {
    "deeply nested JSON": _raw("200 OK", b"[" * 100_000),
    "a truncated body": _raw("200 OK", b'{"keys": [', length=1000),
    "a bad status line": b"HTTP/1.1 OK-ish\r\n\r\n",
    "not HTTP": b"\x00\xff" * 10,
}
"""Raw responses that break the HTTP client or the JSON parser in different ways."""


class IdP:
    """Serves ``/jwks.json`` with the keys it holds; ``down`` makes it answer 500, and
    ``broken`` makes it answer one of :data:`BROKEN`."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.down = False
        self.broken: str | None = None
        self.hits = 0
        self.max_age = 600
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                idp.hits += 1
                if idp.down:
                    self.send_response(500)
                    self.end_headers()
                    return
                if idp.broken is not None:
                    self.wfile.write(BROKEN[idp.broken])
                    self.close_connection = True
                    return
                body = json.dumps(
                    {
                        "keys": [
                            jose.VerificationKey("RS256", k.public_key(), kid).to_jwk()
                            for kid, k in idp.keys.items()
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", f"public, max-age={idp.max_age}")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"

    def new_key(self) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return kid

    def token(self, kid: str, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISS,
            "aud": AUD,
            "sub": "auth0|alice",
            "iat": now,
            "exp": now + 300,
            "scope": "orders:read",
            **claims,
        }
        return jwt.encode(body, self.keys[kid], "RS256", {"kid": kid})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp(settings: Any) -> Iterator[IdP]:
    server = IdP()
    entry = {"ISSUER": ISS, "AUDIENCES": [AUD], "JWKS_URL": server.url, "ALGORITHMS": ["RS256"]}
    jwt_settings = {**settings.APIAUTH["JWT"]}
    jwt_settings["ISSUERS"] = [*jwt_settings["ISSUERS"], entry]
    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": jwt_settings}):
        yield server
    server.stop()


def fetcher() -> issuers.JWKSFetcher:
    source = issuers.registry()[ISS].keys
    assert isinstance(source, issuers.JWKSFetcher)
    return source


def call(client: Client, token: str) -> Any:
    return client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {token}")


def test_verified_with_the_fetched_keys_then_cached(client: Client, idp: IdP) -> None:
    kid = idp.new_key()
    for _ in range(3):
        response = call(client, idp.token(kid))
        assert response.status_code == 200, response.content
    assert response.json()["kind"] == "jwt" and response.json()["id"] == "auth0|alice"
    assert response.json()["scopes"] == ["orders:read"]
    assert idp.hits == 1


def test_flood_of_unknown_kids_is_one_fetch(client: Client, idp: IdP) -> None:
    kid = idp.new_key()
    assert call(client, idp.token(kid)).status_code == 200
    fetcher().attempted_at -= 60  # the refresh interval has passed since the first fetch
    for _ in range(20):
        forged = idp.token(kid)
        head = jwt.get_unverified_header(forged)
        head["kid"] = uuid.uuid4().hex
        token = jwt.encode(
            jwt.decode(forged, options={"verify_signature": False}), idp.keys[kid], "RS256", head
        )
        assert call(client, token).json()["code"] in ("unknown_kid", "too_many_failures")
    assert idp.hits == 2  # the first fetch, then one refetch for the first unknown kid


def test_rotation_at_the_idp_is_picked_up(client: Client, idp: IdP) -> None:
    old = idp.new_key()
    assert call(client, idp.token(old)).status_code == 200
    fetcher().attempted_at -= 60  # the refresh interval has passed
    new = idp.new_key()
    assert call(client, idp.token(new)).status_code == 200
    assert idp.hits == 2


def test_outage_keeps_the_last_good_set(client: Client, idp: IdP) -> None:
    kid = idp.new_key()
    assert call(client, idp.token(kid)).status_code == 200
    idp.down = True
    source = fetcher()
    source.expires_at, source.attempted_at = 0.0, 0.0  # the cached set is due for a refresh
    assert call(client, idp.token(kid)).status_code == 200
    assert idp.hits == 2
    idp.stop()  # connection refused now
    source.expires_at, source.attempted_at = 0.0, 0.0
    assert call(client, idp.token(kid)).status_code == 200


def test_never_fetched_is_503(client: Client, idp: IdP) -> None:
    kid = idp.new_key()
    idp.down = True
    response = call(client, idp.token(kid))
    assert response.status_code == 503
    assert response.json()["code"] == "issuer_keys_unavailable"


@pytest.mark.parametrize("broken", BROKEN)
def test_broken_answers_are_an_outage(client: Client, idp: IdP, broken: str) -> None:
    """Whatever the IdP answers, a request gets 503 before a first good set and is verified
    with the last good set after one; the IdP is asked again only after the interval."""
    kid = idp.new_key()
    idp.broken = broken
    for _ in range(3):
        response = call(client, idp.token(kid))
        assert response.status_code == 503, response.content
        assert response.json()["code"] == "issuer_keys_unavailable"
    assert idp.hits == 1
    idp.broken = None
    fetcher().attempted_at = fetcher().expires_at = 0.0  # the refresh interval has passed
    assert call(client, idp.token(kid)).status_code == 200
    idp.broken = broken
    fetcher().attempted_at = fetcher().expires_at = 0.0
    assert call(client, idp.token(kid)).status_code == 200  # the last good set
    rotated = idp.new_key()  # an unknown kid: one refetch, which breaks, then a plain refusal
    fetcher().attempted_at = 0.0
    assert call(client, idp.token(rotated)).json()["code"] == "unknown_kid"
    assert idp.hits == 4


def test_cache_control_bounds(idp: IdP) -> None:
    idp.new_key()
    idp.max_age = 10**9
    source = fetcher()
    source.find(None, "RS256")
    assert source.expires_at - time.monotonic() <= 86_400 + 1


def test_oversized_or_malformed_sets_are_refused(idp: IdP) -> None:
    source = fetcher()
    document: Any
    for document in ([], {"keys": "x"}, "x"):
        with pytest.raises(ValueError):
            source.parse(document)
    # Keys for other algorithms or for encryption are skipped, not fatal.
    kid = idp.new_key()
    good = jose.VerificationKey("RS256", idp.keys[kid].public_key(), kid).to_jwk()
    odd = [{**good, "kid": "enc", "use": "enc"}, {"kty": "EC"}, 5, {**good, "alg": ["RS256"]}]
    keys = source.parse({"keys": [good, *odd]})
    assert len(keys) == 1


def test_jwk_without_alg_is_bound_to_the_issuers_one_algorithm(idp: IdP) -> None:
    kid = idp.new_key()
    jwk = jose.VerificationKey("RS256", idp.keys[kid].public_key(), kid).to_jwk()
    del jwk["alg"]
    assert fetcher().parse({"keys": [jwk]}).find(kid, "RS256") is not None


def users_by_email(settings: Any) -> Any:
    """The identity provider's tokens name their user by the ``email`` claim."""
    jwt_settings = {**settings.APIAUTH["JWT"]}
    jwt_settings["ISSUERS"] = [
        {**entry, "USER_FIELD": "email", "USER_CLAIM": "email"} if entry["ISSUER"] == ISS else entry
        for entry in jwt_settings["ISSUERS"]
    ]
    return override_settings(APIAUTH={**settings.APIAUTH, "JWT": jwt_settings})


def test_user_mapping_and_user_revocation(client: Client, idp: IdP, settings: Any) -> None:
    kid = idp.new_key()
    user = make_user("alice", email="alice@example.com")
    with users_by_email(settings):
        response = call(client, idp.token(kid, email="alice@example.com"))
        assert response.status_code == 200, response.content
        assert response.json()["owner"] == "alice"
        unknown = call(client, idp.token(kid, email="nobody@example.com")).json()
        assert (unknown["code"], unknown["detail"]) == (
            "unknown_user",
            "The token's user is unknown.",
        )
        revocation.revoke_user(user)
        assert (
            call(
                client, idp.token(kid, email="alice@example.com", iat=int(time.time()) - 5)
            ).json()["code"]
            == "revoked"
        )
        user.is_active = False
        user.save()
        inactive = call(client, idp.token(kid, email="alice@example.com")).json()
        assert (inactive["code"], inactive["detail"]) == (
            "owner_inactive",
            "The token's user is inactive.",
        )


def test_user_revocation_covers_an_idp_clock_running_ahead(
    client: Client, idp: IdP, settings: Any
) -> None:
    """The IdP's iat is accepted up to LEEWAY in the future, so a "revoked before" mark covers
    its tokens up to LEEWAY after the mark too."""
    kid = idp.new_key()
    user = make_user("alice")
    jwt_settings = {**settings.APIAUTH["JWT"]}
    jwt_settings["ISSUERS"] = [
        {**entry, "USER_FIELD": "username", "USER_CLAIM": "sub"}
        if entry["ISSUER"] == ISS
        else entry
        for entry in jwt_settings["ISSUERS"]
    ]
    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": jwt_settings}):
        ahead = idp.token(kid, sub="alice", iat=int(time.time()) + 20)
        assert call(client, ahead).status_code == 200
        revocation.revoke_user(user)
        assert call(client, ahead).json()["code"] == "revoked"


def test_a_claim_naming_several_users_is_refused(client: Client, idp: IdP, settings: Any) -> None:
    """Email is not unique in Django's user model: a token must never act as whichever of two
    users the database returns first."""
    kid = idp.new_key()
    make_user("alice", email="shared@example.com")
    make_user("alicia", email="shared@example.com")
    with users_by_email(settings):
        body = call(client, idp.token(kid, email="shared@example.com")).json()
    assert (body["code"], body["detail"]) == (
        "ambiguous_user",
        "The token names more than one user.",
    )
