from __future__ import annotations

import binascii
import hashlib
import re

import pytest

from apiauth import crypto

PREFIX = "apk"


def test_generated_key_shape() -> None:
    parsed = crypto.generate_key(PREFIX)
    assert re.fullmatch(r"apk_[0-9A-Za-z]{12}_[0-9A-Za-z]{49}", parsed.raw)
    assert parsed.raw.split("_")[1] == parsed.public_id
    # Only word characters: a double click selects the whole key.
    assert re.fullmatch(r"\w+", parsed.raw)


def test_secret_entropy_is_at_least_192_bits() -> None:
    import math

    assert crypto.SECRET_LENGTH * math.log2(len(crypto.ALPHABET)) >= 192


def test_keys_are_unique() -> None:
    assert len({crypto.generate_key(PREFIX).raw for _ in range(200)}) == 200


def test_round_trip() -> None:
    parsed = crypto.generate_key(PREFIX)
    again = crypto.parse_key(parsed.raw, PREFIX)
    assert again == parsed
    assert again.digest == hashlib.sha256(parsed.raw.encode()).hexdigest()


def test_the_checksum_is_the_crc32_in_six_base62_digits() -> None:
    """Keys issued by any version keep parsing: two digits at a time is the same number."""
    bodies = ["", "apk_", "z" * 64, *(crypto.generate_key(PREFIX).raw[:-6] for _ in range(2000))]
    for body in bodies:
        crc, digits = binascii.crc32(body.encode("ascii")), ""
        for _ in range(crypto.CHECKSUM_LENGTH):
            crc, digit = divmod(crc, 62)
            digits = crypto.ALPHABET[digit] + digits
        assert crypto.checksum(body) == digits


def test_every_single_character_change_is_caught_by_the_checksum() -> None:
    raw = crypto.generate_key(PREFIX).raw
    start = len(PREFIX) + 1
    for index in range(start, len(raw)):
        if raw[index] == "_":
            continue
        replacement = "A" if raw[index] != "A" else "B"
        tampered = raw[:index] + replacement + raw[index + 1 :]
        with pytest.raises(crypto.MalformedKey):
            crypto.parse_key(tampered, PREFIX)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "apk",
        "apk_",
        "xyz_AAAAAAAAAAAA_" + "A" * 49,
        "apk_AAAAAAAAAAAA_" + "A" * 48,
        "apk_AAAAAAAAAAA_" + "A" * 50,
        "apk_AAAAAAAAAAAA_" + "A" * 49 + "\n",
        "apk_ÄAAAAAAAAAAA_" + "A" * 49,
        "apk_AAAAAAAAAAAA-" + "A" * 49,
        "apk_AAAAAAAAAAAA_" + "A" * 10_000,
        "apk_' OR 1=1 --",
        "apk_../../etc/passwd",
    ],
)
def test_malformed_values(value: str) -> None:
    with pytest.raises(crypto.MalformedKey):
        crypto.parse_key(value, PREFIX)
    assert crypto.parse_public_id(value, PREFIX) is None


def test_parse_public_id() -> None:
    parsed = crypto.generate_key(PREFIX)
    assert crypto.parse_public_id(parsed.raw, PREFIX) == parsed.public_id


def test_prefix_must_match() -> None:
    parsed = crypto.generate_key("other")
    with pytest.raises(crypto.MalformedKey):
        crypto.parse_key(parsed.raw, PREFIX)
    assert crypto.parse_key(parsed.raw, "other").public_id == parsed.public_id


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("xyz_3hT9cQ0bLx2W_" + "A" * 49, "wrong prefix"),
        ("apk_short_" + "A" * 49, "wrong shape"),
        ("apk_3hT9cQ0bLx2W_" + "A" * 49, "bad checksum"),
    ],
)
def test_malformed_keys_say_why(value: str, reason: str) -> None:
    """The reason reaches debug logs and the audit's reason codes, never the client."""
    with pytest.raises(crypto.MalformedKey) as excinfo:
        crypto.parse_key(value, "apk")
    assert str(excinfo.value) == reason
