"""JWT authentication over HTTP: tokens we issued and forged ones, challenges, refusals."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apiauth import jose
from apiauth.models import APIKey, RefreshToken, SigningKey, TokenFamily
from tests.factories import make_key
from tests.utils import (
    AUD,
    ISS,
    audited,
    b64,
    call,
    claims_now,
    forge,
    hs256,
    obtain,
    private_key,
    refused,
    segments,
)

pytestmark = pytest.mark.django_db


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
            assert found is not None and found.family.client.owner is None
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


class TestOneThingWrong:
    """Each check on a token that is otherwise valid (our key's signature, a known client, every
    claim right): the refusal must come from the check named, not from another one that would
    have refused a forged token anyway."""

    def claims(self, client_key: Any, **changes: Any) -> dict[str, Any]:
        key, _raw = client_key
        now = int(time.time())
        body = {
            "iss": ISS,
            "sub": key.public_id,
            "aud": AUD,
            "exp": now + 300,
            "iat": now,
            "jti": "0" * 32,
            "client_id": key.public_id,
            "scope": "orders:read",
        }
        body.update(changes)
        return {name: value for name, value in body.items() if value is not None}

    def token(self, signing_key: SigningKey, claims: dict[str, Any], **headers: Any) -> str:
        head = {"kid": signing_key.kid, "typ": "at+jwt", **headers}
        return jwt.encode(claims, private_key(signing_key), "ES256", head)

    def test_the_valid_token_is_accepted(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        token = self.token(signing_key, self.claims(client_key))
        assert call(client, token).status_code == 200

    @pytest.mark.parametrize(
        ("changes", "code"),
        [
            ({"iss": "https://evil.example"}, "invalid_issuer"),
            ({"aud": "https://other.example"}, "invalid_audience"),
            ({"exp": int(time.time()) - 120, "iat": int(time.time()) - 180}, "expired"),
            ({"nbf": int(time.time()) + 600}, "not_yet_valid"),
            ({"iat": int(time.time()) + 600, "exp": int(time.time()) + 900}, "not_yet_valid"),
            ({"exp": int(time.time()) + 2 * 86_400}, "invalid_claim"),
            ({"aud": None}, "missing_claim"),
            ({"exp": None}, "missing_claim"),
            ({"iat": None}, "missing_claim"),
            ({"sub": None}, "missing_claim"),
            ({"client_id": "A" * 12}, "unknown_client"),
        ],
    )
    def test_one_claim_wrong(
        self,
        client: Client,
        signing_key: SigningKey,
        client_key: Any,
        changes: dict[str, Any],
        code: str,
    ) -> None:
        token = self.token(signing_key, self.claims(client_key, **changes))
        refused(call(client, token), code)

    def test_the_type_wrong(self, client: Client, signing_key: SigningKey, client_key: Any) -> None:
        token = self.token(signing_key, self.claims(client_key), typ="JWT")
        refused(call(client, token), "invalid_type")

    def test_a_retired_key_still_verifies_a_revoked_one_does_not(
        self, client: Client, signing_key: SigningKey, client_key: Any
    ) -> None:
        SigningKey.objects.promote(SigningKey.objects.generate("ES256"))
        token = self.token(signing_key, self.claims(client_key))
        assert call(client, token).status_code == 200
        SigningKey.objects.revoke(signing_key)
        refused(call(client, token), "unknown_kid")
