"""Tokens from another issuer: users, machines, keys from a JWKS or settings."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
from django.test import Client

from apiauth import revocation
from tests.factories import make_key
from tests.utils import (
    call,
    form,
    hs256,
    refused,
    top_level_commands,
)

pytestmark = pytest.mark.django_db


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

    @pytest.mark.parametrize("email", [True, "", None, 5.5])
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
