"""API key format: generation, parsing and hashing, in one place.

A key reads ``<prefix>_<public id>_<secret><checksum>``, for example
``apk_3hT9cQ0bLx2W_<43 secret chars><6 checksum chars>``:

* the prefix makes leaked keys recognisable to secret scanners;
* the public id (12 base62 characters) names the key in the admin, logs and commands;
* the secret is 43 base62 characters drawn with :mod:`secrets` (about 256 bits);
* the checksum is CRC32 of everything before it, in 6 base62 characters, so a truncated or
  mistyped key is rejected before any database query.

Only ``[A-Za-z0-9_]`` is used: URL-safe, and a double click selects the whole key.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
PUBLIC_ID_LENGTH = 12
SECRET_LENGTH = 43
CHECKSUM_LENGTH = 6
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,15}$")

PUBLIC_ID_RE = re.compile(rf"[0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}}", re.ASCII)
_TAIL_RE = re.compile(
    rf"([0-9A-Za-z]{{{PUBLIC_ID_LENGTH}}})_([0-9A-Za-z]{{{SECRET_LENGTH + CHECKSUM_LENGTH}}})"
)


class MalformedKey(ValueError):
    """The string is not a well-formed key of ours (wrong shape or checksum)."""


@dataclass(frozen=True, slots=True)
class ParsedKey:
    prefix: str
    public_id: str
    raw: str

    @property
    def digest(self) -> str:
        return hash_key(self.raw)


def _random_string(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


_PAIRS = [high + low for high in ALPHABET for low in ALPHABET]
"""Every two base62 digits, by value: a checksum is three lookups (it is checked per request)."""


def checksum(body: str) -> str:
    """CRC32 of ``body`` in six base62 digits, the most significant first."""
    rest, low = divmod(binascii.crc32(body.encode("ascii")), 3844)  # pragma: no mutate
    high, middle = divmod(rest, 3844)  # a CRC32 is below 62 ** 6: high < 3844
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def generate_public_id() -> str:
    return _random_string(PUBLIC_ID_LENGTH)


def generate_key(prefix: str, public_id: str | None = None) -> ParsedKey:
    public_id = public_id or generate_public_id()
    body = f"{prefix}_{public_id}_{_random_string(SECRET_LENGTH)}"
    return ParsedKey(prefix=prefix, public_id=public_id, raw=body + checksum(body))


def hash_key(raw: str) -> str:
    """SHA-256 of the whole key, hex encoded.

    No salt and no slow hash: the key carries ~256 bits of randomness, so neither a dictionary
    nor brute force applies, and a deterministic digest can be looked up through a unique index.
    """
    # Codec names ignore case: a mutant's "ASCII" is the same codec.
    return hashlib.sha256(raw.encode("ascii")).hexdigest()  # pragma: no mutate


def looks_like_key(value: str, prefix: str) -> bool:
    """Cheap test used to claim an ``Authorization: Bearer`` token as ours (not a JWT)."""
    return value.startswith(prefix + "_")


def parse_key(value: str, prefix: str) -> ParsedKey:
    """Validate shape and checksum without touching the database."""
    if not looks_like_key(value, prefix):
        raise MalformedKey("wrong prefix")
    match = _TAIL_RE.fullmatch(value[len(prefix) + 1 :])
    if match is None:
        raise MalformedKey("wrong shape")
    tail = match.group(2)
    body = value[:-CHECKSUM_LENGTH]
    if not secrets.compare_digest(checksum(body), tail[-CHECKSUM_LENGTH:]):
        raise MalformedKey("bad checksum")
    return ParsedKey(prefix=prefix, public_id=match.group(1), raw=value)


def parse_public_id(value: str, prefix: str) -> str | None:
    """The public id of a key-shaped string, for audit records; ``None`` when not parseable."""
    try:
        return parse_key(value, prefix).public_id
    except MalformedKey:
        return None
