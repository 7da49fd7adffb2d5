"""The verifier's memo of verified tokens: what it may skip, and when it must not."""

from __future__ import annotations

import time
from typing import Any

import pytest

from apiauth import jose
from apiauth.models import SigningKey
from tests.utils import (
    forge,
)

pytestmark = pytest.mark.django_db


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
