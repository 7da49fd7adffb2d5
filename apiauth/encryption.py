"""Encryption at rest for secrets the server must be able to read back (HMAC secrets, and the
private halves of signing keys).

AES-256-GCM with keys from ``APIAUTH["ENCRYPTION_KEYS"]``: the first key encrypts, every key
decrypts, so an encryption key is rotated by putting a new one first, running
``manage.py apiauth_reencrypt`` and then removing the old one. A value reads
``v1$<key id>$<base64url(nonce | ciphertext | tag)>``:

* the key id (8 hex characters of the key's SHA-256) picks the key without trying each;
* the *context* (for example ``hmac:<access key id>``) is authenticated data, so a ciphertext
  copied into another row, or another column, does not decrypt there;
* a fresh 96-bit random nonce per encryption (GCM's limit of 2**32 messages per key is far
  beyond the number of credentials anyone issues).

A database dump without the settings therefore reveals no secret. Keys are 32 random bytes,
base64url encoded (``manage.py apiauth_encryptionkey`` prints one; ``Fernet.generate_key()``
has the same format).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.exceptions import ImproperlyConfigured

from apiauth.conf import conf

VERSION = "v1"
NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(ValueError):
    """The value is not ours, was made with a key no longer configured, or was tampered with."""


@dataclass(frozen=True, slots=True)
class EncryptionKey:
    id: str
    aead: AESGCM


def decode_key(value: object) -> bytes:
    """The 32 bytes of a configured key; ``ValueError`` for anything else."""
    if not isinstance(value, str):
        raise ValueError("an encryption key must be a string")
    try:
        raw = base64.urlsafe_b64decode(value.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError("an encryption key must be base64url encoded") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"an encryption key must decode to {KEY_BYTES} bytes, not {len(raw)}")
    return raw


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


_keys: tuple[tuple[str, ...], list[EncryptionKey]] | None = None


def keys() -> list[EncryptionKey]:
    """The configured keys, first the one that encrypts. Parsed once per configuration."""
    global _keys
    configured = tuple(conf.ENCRYPTION_KEYS)
    if _keys is not None and _keys[0] == configured:
        return _keys[1]
    if not configured:
        raise ImproperlyConfigured(
            "APIAUTH['ENCRYPTION_KEYS'] is empty: secrets cannot be encrypted at rest. "
            "Generate a key with `manage.py apiauth_encryptionkey`."
        )
    parsed = []
    for value in configured:
        try:
            raw = decode_key(value)
        except ValueError as exc:
            raise ImproperlyConfigured(f"APIAUTH['ENCRYPTION_KEYS']: {exc}.") from None
        parsed.append(EncryptionKey(key_id(raw), AESGCM(raw)))
    _keys = (configured, parsed)
    return parsed


def encrypt(plaintext: bytes, context: str) -> str:
    key = keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    sealed = key.aead.encrypt(nonce, plaintext, context.encode())
    body = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{VERSION}${key.id}${body}"


def decrypt(token: str, context: str) -> bytes:
    key_ref, body = _split(token)
    for key in keys():
        if key.id == key_ref:
            break
    else:
        raise DecryptionError("encrypted with a key that is not in APIAUTH['ENCRYPTION_KEYS']")
    try:
        sealed = base64.urlsafe_b64decode(body.encode("ascii"))
        return key.aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
    except (binascii.Error, UnicodeEncodeError, InvalidTag, ValueError):
        raise DecryptionError("the value does not decrypt in this context") from None


def needs_reencryption(token: str) -> bool:
    """Whether ``token`` was made with another key than the one that now encrypts."""
    return _split(token)[0] != keys()[0].id


def _split(token: str) -> tuple[str, str]:
    """The key id and the body of a value of ours (there is one version so far)."""
    parts = token.split("$") if isinstance(token, str) else []
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptionError("not a value encrypted by apiauth")
    return parts[1], parts[2]
