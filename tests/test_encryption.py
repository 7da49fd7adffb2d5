"""Encryption at rest: round trips, binding to a context, tampering, key rotation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from apiauth import encryption
from apiauth.models import HMACCredential
from tests.factories import make_hmac

OLD = "dGVzdHMtb25seS1lbmNyeXB0aW9uLWtleS0zMi1ieXQ="
NEW = encryption.generate_key()


def test_round_trip_and_fresh_nonce() -> None:
    first = encryption.encrypt(b"secret", "hmac:AK1")
    second = encryption.encrypt(b"secret", "hmac:AK1")
    assert first != second and b"secret" not in first.encode()
    assert encryption.decrypt(first, "hmac:AK1") == b"secret"
    assert first.startswith("v1$" + encryption.keys()[0].id + "$")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-2] + ("A" if t[-2] != "A" else "B") + t[-1],
        lambda t: t.replace("v1$", "v2$"),
        lambda t: t + "$x",
        lambda t: t.split("$")[0] + "$" + "0" * 8 + "$" + t.split("$")[2],
        lambda t: t[:20],
        lambda t: "v1$" + t.split("$")[1] + "$!!!",
        lambda t: "",
    ],
)
def test_tampered_values_do_not_decrypt(mangle: object) -> None:
    token = encryption.encrypt(b"secret", "hmac:AK1")
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(mangle(token), "hmac:AK1")  # type: ignore[operator]


def test_bound_to_its_context() -> None:
    token = encryption.encrypt(b"secret", "hmac:AK1")
    with pytest.raises(encryption.DecryptionError):
        encryption.decrypt(token, "hmac:AK2")


def test_missing_or_malformed_keys_are_configuration_errors() -> None:
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": []}), pytest.raises(ImproperlyConfigured):
        encryption.encrypt(b"x", "c")
    with (
        override_settings(APIAUTH={"ENCRYPTION_KEYS": ["short"]}),
        pytest.raises(ImproperlyConfigured),
    ):
        encryption.encrypt(b"x", "c")


def test_old_keys_decrypt_and_the_first_encrypts() -> None:
    token = encryption.encrypt(b"secret", "c")
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW, OLD]}):
        assert encryption.decrypt(token, "c") == b"secret"
        assert encryption.needs_reencryption(token)
        assert not encryption.needs_reencryption(encryption.encrypt(b"secret", "c"))
    with (
        override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW]}),
        pytest.raises(encryption.DecryptionError),
    ):
        encryption.decrypt(token, "c")


@pytest.mark.django_db
def test_reencrypt_moves_every_secret_to_the_new_key() -> None:
    obj, secret = make_hmac()
    rotated, _old = make_hmac(name="rotated")
    import datetime

    newer = HMACCredential.objects.rotate_secret(rotated, datetime.timedelta(hours=1))
    revoked, _s = make_hmac(name="revoked")
    revoked.revoke()
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW, OLD]}):
        assert HMACCredential.objects.reencrypt() == 2
        assert HMACCredential.objects.reencrypt() == 0
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW]}):
        assert HMACCredential.objects.get(pk=obj.pk).secrets() == [secret]
        assert HMACCredential.objects.get(pk=rotated.pk).secrets()[0] == newer


def test_key_ids_are_stable_and_short() -> None:
    raw = encryption.decode_key(OLD)
    assert encryption.key_id(raw) == encryption.key_id(raw) and len(encryption.key_id(raw)) == 8
    # Stored in every value: the derivation must never change.
    assert encryption.key_id(raw) == "635c182f"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "an encryption key must be a string"),
        (3, "an encryption key must be a string"),
        ("é" * 44, "an encryption key must be base64url encoded"),
        ("A" * 43, "an encryption key must be base64url encoded"),
        ("A" * 12, "an encryption key must decode to 32 bytes, not 9"),
        ("A" * 48, "an encryption key must decode to 32 bytes, not 36"),
    ],
)
def test_malformed_keys_say_why(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        encryption.decode_key(value)
    assert str(caught.value) == message


def test_generated_keys_are_32_random_bytes() -> None:
    first, second = encryption.generate_key(), encryption.generate_key()
    assert isinstance(first, str) and first != second
    assert len(encryption.decode_key(first)) == 32 and len(first) == 44


def test_keys_are_parsed_once_per_configuration() -> None:
    assert encryption.keys() is encryption.keys()
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW, OLD]}):
        parsed = encryption.keys()
        assert [key.id for key in parsed] == [
            encryption.key_id(encryption.decode_key(NEW)),
            "635c182f",
        ]
        assert encryption.keys() is parsed


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (
            [],
            "APIAUTH['ENCRYPTION_KEYS'] is empty: secrets cannot be encrypted at rest. "
            "Generate a key with `manage.py apiauth_encryptionkey`.",
        ),
        (["short"], "APIAUTH['ENCRYPTION_KEYS']: an encryption key must be base64url encoded."),
    ],
)
def test_configuration_errors_say_why(keys: list[str], message: str) -> None:
    with (
        override_settings(APIAUTH={"ENCRYPTION_KEYS": keys}),
        pytest.raises(ImproperlyConfigured) as caught,
    ):
        encryption.keys()
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "not a value encrypted by apiauth"),
        (5, "not a value encrypted by apiauth"),
        ("v2$00000000$AAAA", "not a value encrypted by apiauth"),
        ("v1$00000000$AAAA", "encrypted with a key that is not in APIAUTH['ENCRYPTION_KEYS']"),
        ("v1${key}$!!!!", "the value does not decrypt in this context"),
        ("v1${key}$AAAA", "the value does not decrypt in this context"),
    ],
)
def test_refusals_say_why(token: object, message: str) -> None:
    if isinstance(token, str):
        token = token.replace("{key}", encryption.keys()[0].id)
    with pytest.raises(encryption.DecryptionError) as caught:
        encryption.decrypt(token, "c")  # type: ignore[arg-type]
    assert str(caught.value) == message


@pytest.mark.django_db
def test_reencrypt_passes_over_what_is_current() -> None:
    """A credential already under the first key is left as it is, and the others still get
    their turn (credentials come newest first)."""
    older, secret = make_hmac(name="older")  # under OLD, the tests' key
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW, OLD]}):
        newer, _secret = make_hmac(name="newer")  # under NEW already
        stored = HMACCredential.objects.get(pk=newer.pk).secret
        assert HMACCredential.objects.reencrypt() == 1
        assert HMACCredential.objects.get(pk=newer.pk).secret == stored
    with override_settings(APIAUTH={"ENCRYPTION_KEYS": [NEW]}):
        assert HMACCredential.objects.get(pk=older.pk).secrets() == [secret]
