"""Interoperability with an independent JOSE library (joserfc), both ways, over HTTP."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, KeySet, OKPKey, RSAKey

from apiauth.models import SigningKey
from tests.factories import make_key

pytestmark = [
    pytest.mark.django_db,
    # joserfc warns that RFC 9864 deprecates the polymorphic "EdDSA" name in favour of
    # "Ed25519"; "EdDSA" is what deployed verifiers accept today.
    pytest.mark.filterwarnings("ignore:EdDSA is deprecated"),
]

PARTNER = "https://partner.example"
AUD = "https://testserver/v1"


def partner_key(alg: str) -> Any:
    parameters: Any = {"kid": f"partner-{alg}", "alg": alg, "use": "sig"}
    if alg == "ES256":
        return ECKey.generate_key("P-256", parameters=parameters)
    if alg == "EdDSA":
        return OKPKey.generate_key("Ed25519", parameters=parameters)
    return RSAKey.generate_key(2048, parameters=parameters)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256", "PS256"])
def test_tokens_minted_by_joserfc_verify_here(client: Client, settings: Any, alg: str) -> None:
    key = partner_key(alg)
    issuer = {
        "ISSUER": PARTNER,
        "AUDIENCES": [AUD],
        "KEYS": [key.as_dict(private=False)],
        "ALGORITHMS": [alg],
    }
    jwt_settings = {**settings.APIAUTH["JWT"]}
    jwt_settings["ISSUERS"] = [*jwt_settings["ISSUERS"], issuer]
    now = int(time.time())
    claims = {
        "iss": PARTNER,
        "aud": AUD,
        "sub": "svc-1",
        "iat": now,
        "exp": now + 60,
        "scope": "orders:read",
    }
    token = jose_jwt.encode(
        {"alg": alg, "kid": key.kid, "typ": "JWT"}, claims, key, algorithms=[alg]
    )
    with override_settings(APIAUTH={**settings.APIAUTH, "JWT": jwt_settings}):
        response = client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, response.content
        assert response.json()["id"] == "svc-1"
        # The same library's token with one claim changed after signing is refused.
        head, _payload, sig = token.split(".")
        other = jose_jwt.encode(
            {"alg": alg, "kid": key.kid}, {**claims, "sub": "admin"}, key, algorithms=[alg]
        )
        forged = f"{head}.{other.split('.')[1]}.{sig}"
        assert client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {forged}").status_code == 401


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_our_tokens_verify_in_joserfc_against_our_jwks(client: Client, alg: str) -> None:
    SigningKey.objects.generate(alg, state="active")
    _key, raw = make_key(plan="pro")
    issued = client.post(
        "/auth/token",
        urlencode({"grant_type": "client_credentials", "scope": "orders:read"}),
        content_type="application/x-www-form-urlencoded",
        headers={"X-API-Key": raw},
    ).json()
    jwks = client.get("/auth/.well-known/jwks.json").json()
    token = jose_jwt.decode(issued["access_token"], KeySet.import_key_set(jwks), algorithms=[alg])
    assert token.header["typ"] == "at+jwt" and token.header["alg"] == alg
    registry = jose_jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": "https://testserver"},
        aud={"essential": True, "value": AUD},
        exp={"essential": True},
    )
    registry.validate(token.claims)
    assert token.claims["scope"] == "orders:read"
