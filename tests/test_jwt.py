"""JWT authentication and the OAuth 2.0 token endpoint over HTTP, with a real Redis and database."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from apiauth import jose, revocation
from apiauth.models import APIKey, AuditEvent, RefreshToken, SigningKey, TokenFamily
from apiauth.store import reset_stores
from apiauth.store.keys import revocations_key
from tests.factories import make_key, make_user
from tests.utils import FORM, audited, call, form, obtain, refresh, refused

pytestmark = pytest.mark.django_db

ISS = "https://testserver"
AUD = "https://testserver/v1"


def private_key(key: SigningKey) -> Any:
    return serialization.load_pem_private_key(key.decrypt_private_key(), None)


def forge(
    key: SigningKey | None = None,
    *,
    claims: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    signing: Any = None,
    alg: str = "ES256",
) -> str:
    """A token as an attacker (or an honest issuer) would make one."""
    now = int(time.time())
    body = {
        "iss": ISS,
        "sub": "x",
        "aud": AUD,
        "exp": now + 300,
        "iat": now,
        "jti": "j1",
        **(claims or {}),
    }
    head = {"typ": "at+jwt", **({"kid": key.kid} if key else {}), **(headers or {})}
    if signing is None:
        assert key is not None
        signing = private_key(key)
    return jwt.encode(body, signing, alg, head)


def segments(token: str) -> list[str]:
    return token.split(".")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TestClientCredentials:
    def test_exchange_then_call(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        key, raw = client_key
        response = obtain(client, raw, scope="orders:read")
        assert response.status_code == 200, response.content
        body = response.json()
        assert response["Cache-Control"] == "no-store"
        assert response["Pragma"] == "no-cache"
        assert body["token_type"] == "Bearer"
        assert body["scope"] == "orders:read"
        assert 0 < body["expires_in"] <= 900
        assert body["refresh_token"].startswith("apkrt_")
        header = jwt.get_unverified_header(body["access_token"])
        assert header == {"alg": "ES256", "kid": signing_key.kid, "typ": "at+jwt"}
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["client_id"] == claims["sub"] == key.public_id
        assert claims["iss"] == ISS and claims["aud"] == AUD
        ping = call(client, body["access_token"])
        assert ping.status_code == 200, ping.content
        assert ping.json() == {
            "kind": "jwt",
            "id": key.public_id,
            "scopes": ["orders:read"],
            "plan": "pro",
            "owner": None,
        }

    def test_without_refresh_tokens(
        self, client: Client, signing_key: SigningKey, client_key: Any, settings: Any
    ) -> None:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "REFRESH_TOKENS": False},
        }
        key, raw = client_key
        response = obtain(client, raw, scope="orders:read orders:write")
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert body["scope"] == "orders:read orders:write" and 0 < body["expires_in"] <= 900
        assert "sid" not in jwt.decode(body["access_token"], options={"verify_signature": False})
        assert not TokenFamily.objects.filter(api_key=key).exists()
        assert call(client, body["access_token"]).json()["scopes"] == [
            "orders:read",
            "orders:write",
        ]

    def test_the_family_and_its_first_refresh_token(
        self, client: Client, signing_key: SigningKey, settings: Any
    ) -> None:
        """Issued at one instant; the family lives REFRESH_FAMILY_LIFETIME, never past the
        key's expiry, and the refresh token is the prefix and 43 random characters."""
        import datetime
        import re

        from django.utils import timezone

        jwt_settings = {**settings.APIAUTH["JWT"], "REFRESH_FAMILY_LIFETIME": 2 * 86_400}
        settings.APIAUTH = {**settings.APIAUTH, "JWT": jwt_settings}
        lifetime = datetime.timedelta(days=2)
        soon = timezone.now() + datetime.timedelta(hours=1)
        for expires_at in (None, soon):
            key, raw = make_key(scopes=["orders:read"], plan="pro", expires_at=expires_at)
            before = timezone.now()
            body = obtain(client, raw).json()
            assert re.fullmatch(r"apkrt_[A-Za-z0-9_-]{43}", body["refresh_token"])
            family = TokenFamily.objects.get(api_key=key)
            token = RefreshToken.objects.get(family=family)
            assert token.created_at == family.created_at and before <= family.created_at
            if expires_at is None:
                assert family.expires_at == family.created_at + lifetime
            else:
                assert family.expires_at == token.expires_at == soon

    def test_finding_a_refresh_token(self, signing_key: SigningKey, client_key: Any) -> None:
        """Only a well-formed value costs a query, which brings the family, key and owner."""
        from apiauth import tokens

        raw = tokens.client_credentials(client_key[0], None).refresh_token
        assert raw is not None
        prefix = raw[:-43]
        with CaptureQueriesContext(connection) as queries:
            found = tokens.find_refresh_token(raw)
            assert found is not None and found.family.api_key.owner is None
            for value in ("nope", prefix + "é" * 43, prefix + "a" * (201 - len(prefix))):
                assert tokens.find_refresh_token(value) is None
        assert len(queries) == 1
        with CaptureQueriesContext(connection) as queries:
            assert tokens.find_refresh_token(prefix + "a" * (200 - len(prefix))) is None
        assert len(queries) == 1

    def test_no_sql_per_request(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        token = obtain(client, client_key[1]).json()["access_token"]
        assert call(client, token).status_code == 200
        with CaptureQueriesContext(connection) as queries:
            assert call(client, token).status_code == 200
        assert len(queries) == 0, [q["sql"] for q in queries]


def hs256(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    import hashlib
    import hmac

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def claims_now(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISS, "sub": "x", "aud": AUD, "exp": now + 300, "iat": now, **extra}


class TestChallenges:
    """RFC 9110 §11.6.1: a 401 names every scheme the view accepts; RFC 6750 §3.1: a bearer
    value that is no token of ours is an ``invalid_token``."""

    def test_no_credentials(self, client: Client) -> None:
        response = client.get("/v1/ping")
        assert response.status_code == 401
        assert response["WWW-Authenticate"] == (
            'Api-Key realm="api", AWS4-HMAC-SHA256 realm="api", Bearer realm="api"'
        )
        assert response.json()["code"] == "not_authenticated"

    @pytest.mark.parametrize("value", ["nonsense", "a.b", "%%%.%%%.%%%", "x" * 9000])
    def test_a_malformed_bearer(self, client: Client, value: str) -> None:
        body = refused(call(client, value), "invalid_token")
        assert body["detail"] == "The bearer token is malformed."
        challenge = client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {value}")
        assert challenge["WWW-Authenticate"].endswith(
            '"The bearer token is malformed.", Api-Key realm="api", AWS4-HMAC-SHA256 realm="api"'
        )

    def test_a_failure_names_its_scheme_first(self, client: Client) -> None:
        response = client.get("/v1/ping", HTTP_X_API_KEY="apk_nonsense")
        assert response["WWW-Authenticate"].startswith('Api-Key realm="api"')
        assert response["WWW-Authenticate"].count("realm=") == 3


class TestRejections:
    """Every rejection the issue lists, over HTTP through the test API."""

    @pytest.fixture
    def token(self, client: Client, signing_key: SigningKey, client_key: Any) -> str:
        return str(obtain(client, client_key[1]).json()["access_token"])

    def test_tampered_payload(self, client: Client, token: str) -> None:
        head, payload, sig = segments(token)
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["scope"] = "orders:read orders:write admin"
        refused(call(client, f"{head}.{b64(json.dumps(claims).encode())}.{sig}"), "bad_signature")

    def test_tampered_signature(self, client: Client, token: str) -> None:
        head, payload, sig = segments(token)
        raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
        raw[5] ^= 1
        refused(call(client, f"{head}.{payload}.{b64(bytes(raw))}"), "bad_signature")

    def test_alg_none(self, client: Client, token: str) -> None:
        _head, payload, _sig = segments(token)
        head = b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode())
        refused(call(client, f"{head}.{payload}.{b64(b'sig')}"), "alg_not_allowed")
        # With an empty signature it is not even shaped like a signed token.
        assert call(client, f"{head}.{payload}.").status_code == 401

    @pytest.mark.parametrize("form", ["pem", "jwk"])
    def test_hs256_forged_with_our_public_key(
        self, client: Client, signing_key: SigningKey, client_key: Any, form: str
    ) -> None:
        if form == "pem":
            secret = signing_key.public_key.encode()
        else:
            verification = jose.VerificationKey.from_pem(signing_key.public_key, "ES256")
            secret = json.dumps(verification.to_jwk()).encode()
        header = {"alg": "HS256", "typ": "at+jwt", "kid": signing_key.kid}
        forged = hs256(header, claims_now(client_id=client_key[0].public_id), secret)
        body = refused(call(client, forged), "alg_not_allowed")
        assert body["detail"] == "The token's algorithm is not accepted."

    def test_no_kid(self, client: Client, signing_key: SigningKey, client_key: Any) -> None:
        """Without a ``kid``, the issuer's one key of the token's algorithm; with two of
        them (a rotation), none is guessed."""
        claims = {"client_id": client_key[0].public_id}
        token = forge(None, claims=claims, signing=private_key(signing_key))
        assert "kid" not in jwt.get_unverified_header(token)
        assert call(client, token).status_code == 200
        SigningKey.objects.rotate()
        second = forge(None, claims={**claims, "jti": "j2"}, signing=private_key(signing_key))
        refused(call(client, second), "unknown_kid")

    def test_unknown_kid(self, client: Client, signing_key: SigningKey) -> None:
        body = refused(call(client, forge(signing_key, headers={"kid": "nope"})), "unknown_kid")
        assert body["detail"] == "The token's signing key is unknown."

    @pytest.mark.parametrize("kid", ["../../etc/passwd", "' OR 1=1 --", "a\\u0000b", "x" * 201])
    def test_kid_with_path_or_sql(self, client: Client, signing_key: SigningKey, kid: str) -> None:
        response = call(client, forge(signing_key, headers={"kid": kid}))
        assert response.json()["code"] in ("unknown_kid", "malformed")
        refused(response, response.json()["code"])

    def test_foreign_key_claiming_our_kid(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        foreign = ec.generate_private_key(ec.SECP256R1())
        token = forge(signing_key, signing=foreign, claims={"client_id": client_key[0].public_id})
        refused(call(client, token), "bad_signature")

    def test_embedded_jwk(self, client: Client, signing_key: SigningKey) -> None:
        foreign = ec.generate_private_key(ec.SECP256R1())
        jwk = jose.VerificationKey("ES256", foreign.public_key()).to_jwk()
        token = forge(signing_key, signing=foreign, headers={"jwk": jwk})
        refused(call(client, token), "header_not_allowed")

    @pytest.mark.parametrize("header", ["jku", "x5u"])
    def test_key_urls_are_never_followed(
        self, client: Client, signing_key: SigningKey, header: str
    ) -> None:
        token = forge(signing_key, headers={header: "http://127.0.0.1:9/keys"})
        refused(call(client, token), "header_not_allowed")

    def test_wrong_issuer(self, client: Client, signing_key: SigningKey) -> None:
        token = forge(signing_key, claims={"iss": "https://evil.example"})
        body = refused(call(client, token), "invalid_issuer")
        assert body["detail"] == "The token's issuer is not trusted."

    @pytest.mark.parametrize("iss", [["https://testserver"], {"a": 1}, 5, None])
    def test_issuer_of_the_wrong_type(
        self, client: Client, signing_key: SigningKey, iss: Any
    ) -> None:
        good = forge(signing_key)
        head, payload = (
            json.loads(base64.urlsafe_b64decode(p + "==")) for p in good.split(".")[:2]
        )
        signing_input = (
            f"{b64(json.dumps(head).encode())}.{b64(json.dumps({**payload, 'iss': iss}).encode())}"
        )
        signature = jose._ALGORITHMS["ES256"].sign(signing_input.encode(), private_key(signing_key))
        token = f"{signing_input}.{b64(signature)}"
        assert refused(call(client, token), "invalid_issuer")["detail"] == (
            "The token's issuer is not trusted."
        )

    @pytest.mark.parametrize("aud", ["https://other.example", ["a", "b"]])
    def test_wrong_audience(self, client: Client, signing_key: SigningKey, aud: Any) -> None:
        refused(call(client, forge(signing_key, claims={"aud": aud})), "invalid_audience")

    @pytest.mark.parametrize("claim", ["aud", "exp", "iat", "sub"])
    def test_missing_claim(self, client: Client, signing_key: SigningKey, claim: str) -> None:
        now = int(time.time())
        body = {"iss": ISS, "sub": "x", "aud": AUD, "exp": now + 60, "iat": now}
        del body[claim]
        token = jwt.encode(
            body, private_key(signing_key), "ES256", {"kid": signing_key.kid, "typ": "at+jwt"}
        )
        refused(call(client, token), "missing_claim")

    def test_expired(self, client: Client, signing_key: SigningKey) -> None:
        past = int(time.time()) - 120
        token = forge(signing_key, claims={"exp": past, "iat": past - 60})
        refused(call(client, token), "expired")

    def test_within_leeway_is_accepted_as_expiry_goes(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        now = int(time.time())
        token = forge(
            signing_key,
            claims={"exp": now - 10, "iat": now - 70, "client_id": client_key[0].public_id},
        )
        assert call(client, token).status_code == 200

    def test_not_before_ahead(self, client: Client, signing_key: SigningKey) -> None:
        token = forge(signing_key, claims={"nbf": int(time.time()) + 600})
        refused(call(client, token), "not_yet_valid")

    def test_wrong_typ(self, client: Client, signing_key: SigningKey) -> None:
        refused(call(client, forge(signing_key, headers={"typ": "JWT"})), "invalid_type")

    def test_typ_application_form_accepted(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        token = forge(
            signing_key,
            headers={"typ": "application/AT+JWT"},
            claims={"client_id": client_key[0].public_id},
        )
        assert call(client, token).status_code == 200

    def test_unknown_crit(self, client: Client, signing_key: SigningKey) -> None:
        token = forge(signing_key, headers={"crit": ["exp"], "exp": 1})
        refused(call(client, token), "unsupported_crit")

    @pytest.mark.parametrize("where", [0, 1, 2])
    def test_padding_inside_segments(self, client: Client, token: str, where: int) -> None:
        parts = segments(token)
        parts[where] += "=="
        response = call(client, ".".join(parts))
        # Not shaped like a JWS: no class claims it, and the bearer value is malformed.
        refused(response, "invalid_token")

    def test_spaces_inside_segments(self, client: Client, token: str) -> None:
        head, payload, sig = segments(token)
        response = call(client, f"{head}.{payload[:10]} {payload[10:]}.{sig}")
        assert response.status_code == 401

    def test_non_canonical_base64(self, client: Client, token: str) -> None:
        head, payload, sig = segments(token)
        # The last character of a 43-character signature segment carries two unused bits.
        last = sig[-1]
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        twin = alphabet[alphabet.index(last) ^ 1]
        refused(call(client, f"{head}.{payload}.{sig[:-1]}{twin}"), "malformed")

    def test_sixty_kilobyte_token(self, client: Client, signing_key: SigningKey) -> None:
        token = forge(signing_key, claims={"pad": "a" * 60_000})
        refused(call(client, token), "invalid_token")

    @pytest.mark.parametrize(
        "payload",
        [b"[]", b"null", b'{"a":1,"a":2}', b"\xff\xfe", b'{"exp": NaN}', b"1" * 5000],
    )
    def test_garbage_payloads(
        self, client: Client, signing_key: SigningKey, payload: bytes
    ) -> None:
        head = b64(json.dumps({"alg": "ES256", "kid": signing_key.kid, "typ": "at+jwt"}).encode())
        response = call(client, f"{head}.{b64(payload)}.{b64(b'x' * 64)}")
        refused(response, "malformed")

    @pytest.mark.parametrize(
        "claims",
        [{"exp": "soon"}, {"exp": True}, {"iat": [1]}, {"sub": 5}, {"scope": 3}, {"aud": 7}],
    )
    def test_claims_of_the_wrong_type(
        self, client: Client, signing_key: SigningKey, claims: dict[str, Any]
    ) -> None:
        refused(call(client, forge(signing_key, claims=claims)), "invalid_claim")

    @pytest.mark.parametrize(
        ("member", "value", "code"),
        [
            ("exp", "1" + "0" * 400, "invalid_claim"),
            ("nbf", "1" + "0" * 400, "invalid_claim"),
            ("iat", "-1" + "0" * 400, "invalid_claim"),
            ("exp", "1e400", "invalid_claim"),  # infinity, spelled as a number
            ("sub", '"\\ud800"', "malformed"),
            ("jti", '"\\udfff"', "malformed"),
            ("sid", '"\\uDBFFx"', "malformed"),
            ("sid", '"\\u00e9t\\u00e9 \\ud83d\\ude00"', None),  # a surrogate pair is fine
        ],
    )
    def test_signed_claims_at_the_edges_of_json(
        self,
        client: Client,
        signing_key: SigningKey,
        client_key: Any,
        member: str,
        value: str,
        code: str | None,
    ) -> None:
        """Values JSON allows and Python reads, but no time or text can be: refused before
        anything uses them (signed, so only the claim checks stand in the way)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        members = {
            k: json.dumps(v) for k, v in claims_now(client_id=client_key[0].public_id).items()
        }
        members[member] = value
        payload = "{" + ", ".join(f'"{k}": {v}' for k, v in members.items()) + "}"
        head = b64(json.dumps({"alg": "ES256", "kid": signing_key.kid, "typ": "at+jwt"}).encode())
        signing_input = f"{head}.{b64(payload.encode())}"
        der = private_key(signing_key).sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        token = f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
        if code is None:
            assert call(client, token).status_code == 200
        else:
            refused(call(client, token), code)

    def test_lifetime_beyond_the_maximum(self, client: Client, signing_key: SigningKey) -> None:
        now = int(time.time())
        token = forge(signing_key, claims={"exp": now + 2 * 86_400, "iat": now})
        refused(call(client, token), "invalid_claim")

    @pytest.mark.parametrize(
        ("client_id", "code", "detail"),
        [
            (None, "invalid_claim", "The token names no client."),
            # Refused by the claims' checks already (client_principal's own is a backstop).
            (5, "invalid_claim", "The 'client_id' claim must be a short string."),
            (["abc"], "invalid_claim", "The 'client_id' claim must be a short string."),
            ("not a public id", "invalid_claim", "The token names no client."),
            ("A" * 12, "unknown_client", "The token's client is unknown."),
        ],
    )
    def test_the_client_a_token_names(
        self,
        client: Client,
        signing_key: SigningKey,
        caplog: Any,
        client_id: Any,
        code: str,
        detail: str,
    ) -> None:
        """A token of ours acts as the key it names: signed by us, it is still refused when
        that name is missing, not a public id, or no key's; each refusal audited."""
        claims = {} if client_id is None else {"client_id": client_id}
        body = refused(call(client, forge(signing_key, claims=claims)), code)
        assert body["detail"] == detail
        [event] = audited(caplog, code)
        assert event["credential_kind"] == "jwt" and event["client_ip"] == "127.0.0.1"
        assert event["credential_id"] == (client_id if code == "unknown_client" else None)

    def test_a_revoked_clients_token_is_audited_with_its_id(
        self, client: Client, signing_key: SigningKey, client_key: Any, caplog: Any
    ) -> None:
        key, raw = client_key
        token = obtain(client, raw).json()["access_token"]
        key.revoke(reason="leaked")
        refused(call(client, token), "revoked")
        [event] = audited(caplog, "revoked")
        assert event["credential_id"] == key.public_id and event["credential_kind"] == "jwt"

    def test_the_credential_ends_with_the_token_or_its_key(
        self, client: Client, signing_key: SigningKey
    ) -> None:
        """``request.auth.expires_at``: the earlier of the token's ``exp`` and its key's
        expiry; a use is recorded on the key, with the address, after the response."""
        import datetime

        from django.utils import timezone
        from rest_framework.request import Request
        from rest_framework.test import APIRequestFactory

        from apiauth.authentication import JWTAuthentication

        now = int(time.time())
        for key_expiry in (None, now + 60, now + 600):
            expires_at = (
                None
                if key_expiry is None
                else datetime.datetime.fromtimestamp(key_expiry, tz=datetime.UTC)
            )
            key, _raw = make_key(name=f"k{key_expiry}", plan="pro", expires_at=expires_at)
            token = forge(signing_key, claims={"client_id": key.public_id, "exp": now + 300})
            request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
            result = JWTAuthentication().authenticate(request)
            assert result is not None
            # Recorded when the response has gone (usage.flush), not while authenticating.
            assert APIKey.objects.get(pk=key.pk).last_used_at is None
            expected = now + 300 if key_expiry is None else min(key_expiry, now + 300)
            assert result[1].expires_at == datetime.datetime.fromtimestamp(
                expected, tz=datetime.UTC
            )
        assert call(client, token).status_code == 200
        key.refresh_from_db()
        assert key.last_used_ip == "127.0.0.1" and key.last_used_at is not None
        assert key.last_used_at <= timezone.now()

    def test_failures_are_audited_and_counted(
        self, client: Client, signing_key: SigningKey
    ) -> None:
        for _ in range(20):
            call(client, forge(signing_key, headers={"kid": "nope"}))
        response = call(client, forge(signing_key, headers={"kid": "nope"}))
        assert response.status_code == 429
        assert response.json()["code"] == "too_many_failures"


def oauth_error(
    response: Any, status: int, error: str, description: str | None = None
) -> dict[str, Any]:
    """An OAuth error body; ``description``, when given, is the exact ``error_description``
    (it tells the client which of several refusals sharing one code it met)."""
    assert response.status_code == status, response.content
    assert response["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["error_description"]
    if description is not None:
        assert body["error_description"] == description
    assert body["code"] == error  # and a problem+json body too
    return body


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
        from apiauth.models import RefreshToken

        assert not RefreshToken.objects.filter(token_hash=body["refresh_token"]).exists()
        assert body["refresh_token"] not in caplog.text and body["access_token"] not in caplog.text


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

        from apiauth import views

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


class TestSigningKeys:
    def test_rotation(self, client: Client, signing_key: SigningKey, client_key: Any) -> None:
        old_token = obtain(client, client_key[1]).json()["access_token"]
        rotation = SigningKey.objects.rotate()
        assert rotation.retired is not None and rotation.retired.pk == signing_key.pk
        new_token = obtain(client, client_key[1]).json()["access_token"]
        assert jwt.get_unverified_header(new_token)["kid"] == rotation.active.kid
        # Tokens of the retired key verify until they expire; of a revoked key, never.
        assert call(client, old_token).status_code == 200
        assert call(client, new_token).status_code == 200
        SigningKey.objects.revoke(SigningKey.objects.get(pk=signing_key.pk), "leaked")
        refused(call(client, old_token), "unknown_kid")
        assert call(client, new_token).status_code == 200

    def test_jwks_publishes_public_parts(self, client: Client, signing_key: SigningKey) -> None:
        upcoming = SigningKey.objects.generate("EdDSA")
        rsa_key = SigningKey.objects.generate("RS256", 2048, state="retired")
        revoked = SigningKey.objects.generate("ES256", state="retired")
        SigningKey.objects.revoke(revoked)
        response = client.get("/auth/.well-known/jwks.json")
        assert response.status_code == 200
        assert set(response["Cache-Control"].split(", ")) == {"public", "max-age=300"}
        keys = {jwk["kid"]: jwk for jwk in response.json()["keys"]}
        assert set(keys) == {signing_key.kid, upcoming.kid, rsa_key.kid}
        for jwk in keys.values():
            assert jwk["use"] == "sig" and jwk["alg"] in ("ES256", "EdDSA", "RS256")
            assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)

    def test_one_active_key(self, signing_key: SigningKey) -> None:
        from django.core.exceptions import ValidationError
        from django.db import IntegrityError, transaction

        with pytest.raises(ValidationError):
            SigningKey.objects.generate("ES256", state="active")
        other = SigningKey.objects.generate("ES256")
        with pytest.raises(IntegrityError), transaction.atomic():
            SigningKey.objects.filter(pk=other.pk).update(state="active")

    def test_a_token_presented_again_beside_other_keys_of_its_algorithm(
        self, client: Client, signing_key: SigningKey, client_key: Any, monkeypatch: Any
    ) -> None:
        checked: list[str | None] = []
        verify = jose.verify_signature

        def counting(jws: jose.JWS, key: jose.VerificationKey) -> None:
            checked.append(key.kid)
            verify(jws, key)

        monkeypatch.setattr(jose, "verify_signature", counting)
        token = obtain(client, client_key[1]).json()["access_token"]
        SigningKey.objects.rotate()  # its key retired beside a new active ES256 key
        assert call(client, token).status_code == 200
        assert call(client, token).status_code == 200
        # The second time the remembered verification stands: its key is found by kid.
        assert checked == [signing_key.kid]

    def test_a_token_never_outlives_its_key(self, client: Client, signing_key: SigningKey) -> None:
        import datetime

        from django.utils import timezone

        soon = timezone.now() + datetime.timedelta(seconds=100)
        key, raw = make_key(scopes=["orders:read"], plan="pro", expires_at=soon)
        body = obtain(client, raw).json()
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["exp"] == int(soon.timestamp())
        assert 95 <= body["expires_in"] <= 100

    def test_dump_reveals_no_private_key(self, signing_key: SigningKey) -> None:
        import io

        from django.core.management import call_command

        out = io.StringIO()
        call_command("dumpdata", "apiauth.signingkey", stdout=out)
        assert "PRIVATE KEY" not in out.getvalue()
        assert b"PRIVATE KEY" in signing_key.decrypt_private_key()


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


def test_jti_is_a_uuid7_holding_the_issue_time() -> None:
    import uuid

    from apiauth import tokens

    clock = 1_795_000_000.1249  # an even millisecond: a random bit ORed into it would show
    jti = tokens.new_jti(clock)
    # The random bits never spill into the time, the version or the variant.
    for value in [jti] + [tokens.new_jti(clock) for _ in range(63)]:
        parsed = uuid.UUID(value)
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
        assert int(value[:12], 16) == 1_795_000_000_124
    assert tokens.issued_at({"jti": jti, "iat": 1}) == 1_795_000_000.124
    assert tokens.new_jti(clock) != jti
    # Any other jti (an older token's uuid4, not hex, not ours): iat.
    for other in (uuid.uuid4().hex, "x" * 32, jti.upper(), jti[:-1], 5, None):
        assert tokens.issued_at({"jti": other, "iat": 1}) == 1.0


class TestVerifiedCache:
    """A token's signature is checked once per process; nothing else is remembered."""

    @pytest.fixture
    def verifier(self) -> Any:
        from apiauth.verification import TokenVerifier

        return TokenVerifier()

    @pytest.fixture
    def signatures(self, monkeypatch: Any) -> list[str]:
        checked: list[str] = []
        original = jose.verify_signature

        def spy(jws: Any, key: Any) -> None:
            checked.append(jws.alg)
            original(jws, key)

        monkeypatch.setattr(jose, "verify_signature", spy)
        return checked

    def test_verified_once(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey, client_key: Any
    ) -> None:
        token = forge(signing_key, claims={"client_id": client_key[0].public_id})
        first = verifier.verify(token)
        first.claims["scope"] = "admin"  # a caller's change is its own
        second = verifier.verify(token)
        assert signatures == ["ES256"]
        assert "scope" not in second.claims and second.issuer is first.issuer
        # Either way the answer names the header and the key that verified the signature.
        for verified in (first, second):
            assert verified.header == {"alg": "ES256", "kid": signing_key.kid, "typ": "at+jwt"}
            assert verified.key is not None and verified.key.kid == signing_key.kid
        assert second.key is first.key

    def test_expiry_is_checked_again(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey
    ) -> None:
        token = forge(signing_key)
        verifier.verify(token)
        verifier.clock = lambda: time.time() + 400  # exp was now + 300, leeway 30
        with pytest.raises(jose.TokenError) as refused_:
            verifier.verify(token)
        assert refused_.value.code == "expired"

    def test_a_revoked_signing_key_is_not_remembered(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey
    ) -> None:
        token = forge(signing_key)
        verifier.verify(token)
        SigningKey.objects.revoke(signing_key, "leaked")
        with pytest.raises(jose.TokenError) as refused_:
            verifier.verify(token)
        assert refused_.value.code == "unknown_kid"

    def test_a_changed_issuer_verifies_again(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey, settings: Any
    ) -> None:
        token = forge(signing_key)
        verifier.verify(token)
        issuers_ = [
            {**entry, "AUDIENCES": ["https://elsewhere"]}
            for entry in settings.APIAUTH["JWT"]["ISSUERS"]
        ]
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "ISSUERS": issuers_},
        }
        with pytest.raises(jose.TokenError) as refused_:
            verifier.verify(token)
        assert refused_.value.code == "invalid_audience"
        assert signatures == ["ES256", "ES256"]

    def test_bounded_oldest_first(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey, settings: Any
    ) -> None:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "VERIFIED_CACHE_SIZE": 2},
        }
        tokens_ = [forge(signing_key, claims={"jti": str(n)}) for n in range(3)]
        for token in tokens_:
            verifier.verify(token)
        assert len(verifier.verified) == 2
        verifier.verify(tokens_[2])
        verifier.verify(tokens_[0])  # evicted: verified again
        assert len(signatures) == 4

    def test_token_length_from_settings(
        self, verifier: Any, signing_key: SigningKey, settings: Any
    ) -> None:
        token = forge(signing_key)
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "MAX_TOKEN_LENGTH": len(token) - 1},
        }
        with pytest.raises(jose.TokenError) as refused_:
            verifier.verify(token)
        assert (refused_.value.code, str(refused_.value)) == ("malformed", "The token is too long.")

    def test_off(
        self, verifier: Any, signatures: list[str], signing_key: SigningKey, settings: Any
    ) -> None:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "JWT": {**settings.APIAUTH["JWT"], "VERIFIED_CACHE_SIZE": 0},
        }
        token = forge(signing_key)
        verifier.verify(token)
        verifier.verify(token)
        assert len(signatures) == 2 and not verifier.verified

    def test_refused_tokens_are_not_remembered(
        self, verifier: Any, signing_key: SigningKey
    ) -> None:
        with pytest.raises(jose.TokenError):
            verifier.verify(forge(signing_key, claims={"aud": "https://other.example"}))
        assert not verifier.verified


class TestAnotherIssuer:
    """An identity provider's tokens (here a shared HS256 secret): the subject becomes the
    principal, machine or user, with the issuer's plan."""

    SECRET = "s" * 40

    @staticmethod
    def trust(settings: Any, issuer: dict[str, Any]) -> None:
        """Make ``issuer`` the only trusted one (settings are read again when they change)."""
        jwt_settings = {**settings.APIAUTH["JWT"], "ISSUERS": [issuer]}
        settings.APIAUTH = {**settings.APIAUTH, "JWT": jwt_settings}

    @pytest.fixture
    def legacy(self, settings: Any) -> dict[str, Any]:
        issuer = {"ISSUER": "legacy", "AUDIENCES": ["api"], "SECRET": self.SECRET, "PLAN": "pro"}
        self.trust(settings, issuer)
        return issuer

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": "legacy", "aud": "api", "exp": now + 300, "iat": now, **claims}
        return hs256({"alg": "HS256", "typ": "at+jwt"}, body, self.SECRET.encode())

    def test_a_machine_named_by_its_subject(self, client: Client, legacy: Any) -> None:
        response = call(client, self.token(sub="partner-" + "x" * 100, scope="orders:read"))
        assert response.status_code == 200, response.content
        assert response.json() == {
            "kind": "jwt",
            "id": ("partner-" + "x" * 100)[:64],
            "scopes": ["orders:read"],
            "plan": "pro",
            "owner": None,
        }

    def test_the_default_plan_without_the_issuers(
        self, client: Client, legacy: Any, settings: Any
    ) -> None:
        del legacy["PLAN"]
        self.trust(settings, legacy)
        assert call(client, self.token(sub="partner")).json()["plan"] == settings.APIAUTH.get(
            "DEFAULT_PLAN"
        )

    @pytest.mark.parametrize("email", [5, "", None])
    def test_a_user_claim_that_names_no_one(
        self, client: Client, legacy: Any, settings: Any, email: Any
    ) -> None:
        legacy.update(USER_CLAIM="email", USER_FIELD="email")
        self.trust(settings, legacy)
        claims = {"sub": "u1"} if email is None else {"sub": "u1", "email": email}
        body = refused(call(client, self.token(**claims)), "missing_claim")
        assert body["detail"] == "The token names no subject."

    @staticmethod
    def lineage(subject: str) -> str:
        lineage = revocation.subject_lineage("legacy", subject)
        # Stable across releases: marks and buckets already in Redis are named by it.
        assert lineage == "sub-" + hashlib.sha256(f"legacy\0{subject}".encode()).hexdigest()[:24]
        return lineage

    def test_revoking_one_subject(self, client: Client, legacy: Any) -> None:
        token = self.token(sub="partner")
        assert call(client, token).status_code == 200
        revocation.revoke_issued_before([self.lineage("partner")])
        refused(call(client, token), "revoked")
        # The issuer's other subjects, even one whose name starts alike, are not concerned.
        assert call(client, self.token(sub="partner2")).status_code == 200

    def test_not_introspected_here(self, client: Client, legacy: Any) -> None:
        """Valid as it is, the token is not ours to vouch for (RFC 7662 §2.2)."""
        _server, raw = make_key(name="rs", scopes=["tokens:introspect"], plan="pro")
        token = self.token(sub="partner")
        assert call(client, token).status_code == 200
        response = form("/auth/introspect", client, raw, token=token)
        assert response.json() == {"active": False}

    def test_one_round_trip(self, client: Client, legacy: Any, _redis: Any) -> None:
        """The subject's marks ride the throttle's script: no version token to confirm."""
        from tests.test_throttle_redis import top_level_commands

        token = self.token(sub="partner")
        assert call(client, token).status_code == 200
        sent = top_level_commands(_redis.client(), lambda: call(client, token))
        assert sent == {"cmdstat_evalsha": 1}

    def test_the_credential_ends_with_the_token(self, legacy: Any) -> None:
        import datetime

        from rest_framework.request import Request
        from rest_framework.test import APIRequestFactory

        from apiauth.authentication import JWTAuthentication

        exp = int(time.time()) + 120
        token = self.token(sub="partner", exp=exp)
        request = Request(APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))
        result = JWTAuthentication().authenticate(request)
        assert result is not None
        assert result[1].expires_at == datetime.datetime.fromtimestamp(exp, tz=datetime.UTC)

    def test_claims_the_issuer_does_not_require(
        self, client: Client, legacy: Any, settings: Any
    ) -> None:
        """Without ``exp`` the credential has no end of its own; without ``iat`` any "revoked
        before" mark covers the token, whenever it was issued."""
        legacy["REQUIRED_CLAIMS"] = ["iss", "aud", "sub"]
        self.trust(settings, legacy)
        claims = {"iss": "legacy", "aud": "api", "sub": "partner"}
        token = hs256({"alg": "HS256", "typ": "at+jwt"}, claims, self.SECRET.encode())
        assert call(client, token).status_code == 200, call(client, token).content
        revocation.revoke_issued_before([self.lineage("partner")], when=time.time() - 3600)
        refused(call(client, token), "revoked")

    def test_a_mark_allows_for_the_issuers_clock(self, client: Client, legacy: Any) -> None:
        now = time.time()
        revocation.revoke_issued_before([self.lineage("partner")], when=now)
        # The issuer's clock may run up to LEEWAY (30 s) ahead of ours: a token it dates 20 s
        # after the revocation may have been issued before it.
        refused(call(client, self.token(sub="partner", iat=int(now) + 20)), "revoked")
        # Beyond the leeway, a token is newer than the mark.
        revocation.revoke_issued_before([self.lineage("other")], when=now - 31)
        assert call(client, self.token(sub="other", iat=int(now) + 1)).status_code == 200


def test_the_challenge_describes_in_printable_ascii() -> None:
    """RFC 6750 §3: ``error_description`` is printable ASCII without ``"`` or ``\\``; the
    body's ``detail`` keeps the words as they are."""
    from django.test import RequestFactory
    from rest_framework.request import Request

    from apiauth.authentication import JWTAuthentication

    request = Request(RequestFactory().get("/v1/ping"))
    exc = JWTAuthentication().fail(request, "bad", 'It’s "odd" \\ ~ really, X.\n')
    assert exc.challenge == (  # type: ignore[attr-defined]
        'Bearer realm="api", error="invalid_token", error_description="Its odd  ~ really, X."'
    )
    assert exc.detail == 'It’s "odd" \\ ~ really, X.\n'


def test_strict_lockout_refuses_a_valid_token(
    client: Client, signing_key: Any, client_key: Any, settings: Any
) -> None:
    """``FAILED_AUTH_LOCKOUT = "all"``: a locked address is refused before the token is
    even verified."""
    token = obtain(client, client_key[1]).json()["access_token"]
    settings.APIAUTH = {
        **settings.APIAUTH,
        "FAILED_AUTH_LIMITS": {"rate": "1/hour", "burst": 2},
        "FAILED_AUTH_LOCKOUT": "all",
    }
    for _ in range(2):
        refused(call(client, token[:-4] + "AAAA"), "bad_signature")
    response = call(client, token)
    assert response.status_code == 429, response.content
    assert response.json()["code"] == "too_many_failures"
