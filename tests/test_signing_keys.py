"""Signing keys: the rotation command, key states and the key ring."""

from __future__ import annotations

import datetime
import io
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from apiauth import jose, keyring
from apiauth.models import AuditEvent, SigningKey

pytestmark = pytest.mark.django_db


def rotate(*args: str) -> list[str]:
    out = io.StringIO()
    call_command("apiauth_rotatesigningkey", *args, stdout=out)
    return out.getvalue().splitlines()


def states() -> dict[str, str]:
    return dict(SigningKey.objects.values_list("kid", "state"))


def test_first_run_and_steady_rotation() -> None:
    lines = rotate()
    assert lines[-1].startswith("active ") and lines[-2].startswith("next ")
    active = SigningKey.objects.get(state="active")
    upcoming = SigningKey.objects.get(state="next")
    assert active.algorithm == "ES256"
    rotate()
    assert states()[active.kid] == "retired"
    assert states()[upcoming.kid] == "active"
    assert list(states().values()).count("next") == 1
    actions = list(
        AuditEvent.objects.filter(credential_kind="signing_key").values_list("action", flat=True)
    )
    assert {"promote", "retire", "issue"} <= set(actions)


def test_if_older_than_keeps_a_young_key() -> None:
    rotate()
    before = states()
    assert rotate("--if-older-than", "3600")[-1].endswith("kept")
    assert states() == before


def test_expired_retired_keys_are_revoked() -> None:
    rotate()
    rotate()
    retired = SigningKey.objects.get(state="retired")
    SigningKey.objects.filter(pk=retired.pk).update(
        retired_at=timezone.now() - datetime.timedelta(days=2)
    )
    lines = rotate()
    assert f"revoked {retired.kid} (every token it signed has expired)" in lines
    assert states()[retired.kid] == "revoked"


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_algorithms(algorithm: str) -> None:
    rotate("--algorithm", algorithm)
    key = SigningKey.objects.get(state="active")
    assert key.algorithm == algorithm
    assert key.key_size == (2048 if algorithm == "RS256" else None)
    assert keyring.ring.get_signer().alg == algorithm


def test_rsa_3072() -> None:
    rotate("--algorithm", "RS256", "--key-size", "3072")
    assert SigningKey.objects.get(state="active").key_size == 3072


def test_key_size_only_for_rsa() -> None:
    with pytest.raises(CommandError):
        rotate("--algorithm", "ES256", "--key-size", "2048")


def test_state_rules() -> None:
    key = SigningKey.objects.generate("ES256")
    SigningKey.objects.promote(key)
    with pytest.raises(ValueError):
        SigningKey.objects.retire(key)  # the active key is retired by promoting another
    with pytest.raises(ValueError):
        SigningKey.objects.promote(key)
    upcoming = SigningKey.objects.generate("ES256")
    SigningKey.objects.retire(upcoming)
    assert SigningKey.objects.revoke(upcoming, "test") is True
    assert SigningKey.objects.revoke(upcoming, "again") is False
    with pytest.raises(ValueError):
        SigningKey.objects.promote(upcoming)


def test_kid_is_the_rfc7638_thumbprint() -> None:
    # RFC 7638 §3.1's example key and thumbprint.
    from apiauth import jose

    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
            "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
            "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
            "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
            "Cur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
        "alg": "RS256",
    }
    key = jose.VerificationKey.from_jwk(jwk)
    from cryptography.hazmat.primitives import serialization

    pem = key.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert jose.thumbprint("RS256", pem) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_ring_reloads_on_an_unknown_kid_at_most_once_a_second() -> None:
    now = [1000.0]
    ring = keyring.KeyRing(clock=lambda: now[0])
    assert ring.find("nope", "ES256") is None
    key = SigningKey.objects.generate("ES256")
    assert ring.find(key.kid, "ES256") is None  # within the second: no reload
    now[0] += 1.0
    assert ring.find(key.kid, "ES256") is not None


class TestRingRaces:
    """A change landing while another thread loads or decrypts is never kept past that call."""

    def test_a_signer_decrypted_during_a_rotation_is_not_kept(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        SigningKey.objects.generate("ES256", state="active")
        upcoming = SigningKey.objects.generate("ES256")
        decrypt = SigningKey.decrypt_private_key
        raced: list[bool] = []

        def promote_meanwhile(self: SigningKey) -> bytes:
            if not raced:
                raced.append(True)
                SigningKey.objects.promote(upcoming)  # another thread, or the cron command
                keyring.ring.load()  # another request thread reloads the ring
            return decrypt(self)

        monkeypatch.setattr(SigningKey, "decrypt_private_key", promote_meanwhile)
        keyring.ring.get_signer()  # the racing call itself may sign with the old key once
        keyring.ring.loaded_at = float("-inf")  # KEY_RING_TTL later
        assert keyring.ring.get_signer().kid == upcoming.kid

    def test_a_load_racing_a_revocation_is_not_kept(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from apiauth import jose

        key = SigningKey.objects.generate("ES256", state="active")
        from_pem = jose.VerificationKey.from_pem.__func__  # type: ignore[attr-defined]
        raced: list[bool] = []

        def revoke_meanwhile(cls: Any, /, *args: Any, **kwargs: Any) -> Any:
            if not raced:
                raced.append(True)
                SigningKey.objects.revoke(key, "leaked")  # after the load's SELECT
            return from_pem(cls, *args, **kwargs)

        monkeypatch.setattr(jose.VerificationKey, "from_pem", classmethod(revoke_meanwhile))
        keyring.ring.current()
        assert keyring.ring.find(key.kid, "ES256") is None


class TestKeyPairs:
    def test_refusals_say_what_is_possible(self) -> None:
        with pytest.raises(ValueError, match=r"^RS256 keys are 2048 or 3072 bits\.$"):
            jose.generate_pair("RS256", 1024)
        with pytest.raises(ValueError, match=r"^We sign with RS256, ES256, EdDSA, not HS256\.$"):
            jose.generate_pair("HS256")


class TestRing:
    """A ring of its own, on its own clock (``KEY_RING_TTL`` is 10 s)."""

    @pytest.fixture
    def now(self) -> list[float]:
        return [1000.0]

    @pytest.fixture
    def ring(self, now: list[float]) -> keyring.KeyRing:
        return keyring.KeyRing(clock=lambda: now[0])

    def test_a_new_ring_signs(self, ring: keyring.KeyRing) -> None:
        key = SigningKey.objects.generate("ES256", state="active")
        assert ring.get_signer().kid == key.kid

    def test_a_new_ring_may_be_cleared(self, ring: keyring.KeyRing) -> None:
        ring.clear()
        key = SigningKey.objects.generate("ES256", state="active")
        assert ring.find(key.kid, "ES256") is not None

    def test_without_an_active_key(self, ring: keyring.KeyRing) -> None:
        SigningKey.objects.generate("ES256")  # next, not active
        with pytest.raises(keyring.NoSigningKey, match=r"^There is no active signing key\.$"):
            ring.get_signer()

    def test_reloaded_once_older_than_the_ttl(
        self, ring: keyring.KeyRing, now: list[float]
    ) -> None:
        keys = ring.current()
        now[0] += 10
        assert ring.current() is keys
        now[0] += 0.001
        assert ring.current() is not keys

    def test_a_known_kid_costs_no_query(
        self, ring: keyring.KeyRing, now: list[float], django_assert_num_queries: Any
    ) -> None:
        key = SigningKey.objects.generate("ES256", state="active")
        assert ring.find(key.kid, "ES256") is not None
        now[0] += 5  # past the unknown-kid interval, within the TTL
        with django_assert_num_queries(0):
            assert ring.find(key.kid, "ES256") is not None

    def test_an_unknown_kid_is_looked_up_by_its_kid(
        self, ring: keyring.KeyRing, now: list[float]
    ) -> None:
        ring.current()
        first = SigningKey.objects.generate("ES256", state="active")
        second = SigningKey.objects.generate("ES256")
        now[0] += 1
        found = ring.find(second.kid, "ES256")
        assert found is not None and found.kid == second.kid
        assert ring.find(first.kid, "ES256").kid == first.kid  # type: ignore[union-attr]

    def test_a_promotion_elsewhere_is_signed_with_at_once(
        self, ring: keyring.KeyRing, now: list[float]
    ) -> None:
        old = SigningKey.objects.generate("ES256", state="active")
        upcoming = SigningKey.objects.generate("ES256")
        assert ring.get_signer().kid == old.kid
        # Another server promotes: no signal reaches this process, whose ring is within its
        # TTL; the database says the old key signs no more.
        SigningKey.objects.filter(pk=old.pk).update(state="retired")
        SigningKey.objects.filter(pk=upcoming.pk).update(state="active")
        assert ring.get_signer().kid == upcoming.kid
        # The retired key still verifies the tokens it signed.
        assert ring.find(old.kid, "ES256") is not None

    def test_the_private_key_is_decrypted_once(
        self, ring: keyring.KeyRing, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        SigningKey.objects.generate("ES256", state="active")
        decrypt = SigningKey.decrypt_private_key
        calls: list[str] = []

        def counted(self: SigningKey) -> bytes:
            calls.append(self.kid)
            return decrypt(self)

        monkeypatch.setattr(SigningKey, "decrypt_private_key", counted)
        signers = {ring.get_signer() for _ in range(3)}
        assert len(calls) == 1 and len(signers) == 1


class TestKeyStates:
    """Each refusal in its own words (the admin shows them), and what a state change sets."""

    def test_sizes(self) -> None:
        with pytest.raises(ValueError, match=r"^ES256 keys have no size to choose\.$"):
            SigningKey.objects.generate("ES256", 2048)
        for algorithm, size, message in [
            ("RS256", 1024, "RS256 keys are 2048 or 3072 bits."),
            ("EdDSA", 2048, "Only RS256 keys have a size to choose."),
        ]:
            with pytest.raises(ValidationError) as caught:
                SigningKey(kid="k", algorithm=algorithm, key_size=size).clean()
            assert caught.value.message_dict == {"key_size": [message]}

    def test_activation_time_only_for_an_active_key(self) -> None:
        assert SigningKey.objects.generate("ES256").activated_at is None
        before = timezone.now()
        active = SigningKey.objects.generate("ES256", state="active")
        assert active.activated_at is not None and before <= active.activated_at

    def test_promote_and_retire_refusals(self) -> None:
        active = SigningKey.objects.generate("ES256", state="active")
        with pytest.raises(
            ValueError, match=r"^Only a next or retired key can be promoted; this one is active\.$"
        ):
            SigningKey.objects.promote(active)
        with pytest.raises(
            ValueError, match=r"^The active key is retired by promoting another one\.$"
        ):
            SigningKey.objects.retire(active)
        revoked = SigningKey.objects.generate("ES256")
        SigningKey.objects.revoke(revoked)
        with pytest.raises(
            ValueError, match=r"^Only a next key can be retired; this one is revoked\.$"
        ):
            SigningKey.objects.retire(revoked)


class TestRotationHorizon:
    """A retired key is revoked once no token it signed can still be valid:
    ``MAX_TOKEN_LIFETIME`` (86400 s) plus ``LEEWAY`` (30 s) after its retirement."""

    def retired_ago(self, seconds: float) -> SigningKey:
        key = SigningKey.objects.generate("ES256")
        SigningKey.objects.retire(key)
        SigningKey.objects.filter(pk=key.pk).update(
            retired_at=timezone.now() - datetime.timedelta(seconds=seconds)
        )
        return key

    def test_kept_until_its_last_token_expires(self) -> None:
        kept, ended = self.retired_ago(86_430 - 5), self.retired_ago(86_430 + 5)
        lines = rotate()
        assert states()[kept.kid] == "retired" and states()[ended.kid] == "revoked"
        assert f"revoked {ended.kid} (every token it signed has expired)" in lines
        assert SigningKey.objects.get(pk=ended.pk).reason == "every token it signed has expired"
        # Reported once: a later rotation does not revoke it again.
        assert not [line for line in rotate() if ended.kid in line]

    def test_the_published_key_has_the_size_asked(self) -> None:
        rotate("--algorithm", "RS256", "--key-size", "3072")
        assert {key.key_size for key in SigningKey.objects.all()} == {3072}


def test_a_ring_without_an_active_key_is_not_kept(client_key: Any) -> None:
    """The token endpoint answers 503 until a key is active, and not a moment after: a key
    promoted in another process (no signal reaches this one) signs the next token."""
    from django.test import Client

    from tests.utils import obtain

    client = Client()
    assert obtain(client, client_key[1]).status_code == 503
    key = SigningKey.objects.generate("ES256", state="next")
    SigningKey.objects.filter(pk=key.pk).update(state="active")  # elsewhere: no signal here
    response = obtain(client, client_key[1])
    assert response.status_code == 200, response.content
