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
    for bad in (None, 3, "A" * 10, "é" * 44):
        with pytest.raises(ValueError):
            encryption.decode_key(bad)
