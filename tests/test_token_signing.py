"""Our signing keys as the token endpoint and the API meet them: rotation, revocation."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from django.test import Client

from apiauth import jose
from apiauth.models import SigningKey
from tests.factories import make_key
from tests.utils import (
    call,
    obtain,
    refused,
)

pytestmark = pytest.mark.django_db


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
