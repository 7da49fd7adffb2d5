"""The pure rules of ``apiauth.jose`` (claims, token parsing, base64url and JSON, key sets and
key checks): every refusal with its code and message, and every bound on both sides (mutation
testing found these untested through HTTP alone)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apiauth import jose

ISS = "https://issuer.example"
AUD = "https://api.example"
NOW = 1_800_000_000.0

POLICY = jose.ClaimsPolicy(
    issuer=ISS,
    audiences=frozenset({AUD}),
    leeway=30.0,
    types=frozenset({"at+jwt"}),
    max_lifetime=3600.0,
)


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISS,
        "sub": "alice",
        "aud": AUD,
        "exp": NOW + 600,
        "iat": NOW,
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def refusal(body: dict[str, Any], header: dict[str, Any] | None = None) -> tuple[str, str]:
    with pytest.raises(jose.TokenError) as caught:
        POLICY.check({"typ": "at+jwt"} if header is None else header, body, NOW)
    return caught.value.code, caught.value.detail


def accepted(body: dict[str, Any], header: dict[str, Any] | None = None) -> bool:
    POLICY.check({"typ": "at+jwt"} if header is None else header, body, NOW)
    return True


class TestRefusals:
    @pytest.mark.parametrize(
        "typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"]
    )
    def test_type_is_a_media_type(self, typ: str) -> None:
        assert accepted(claims(), {"typ": typ})

    @pytest.mark.parametrize(
        "header", [{}, {"typ": "JWT"}, {"typ": 5}, {"typ": "application/jwt"}, {"typ": "x/at+jwt"}]
    )
    def test_type(self, header: dict[str, Any]) -> None:
        assert refusal(claims(), header) == (
            "invalid_type",
            "The token is not of an accepted type (typ).",
        )

    def test_missing_claims_are_listed_in_order(self) -> None:
        assert refusal(claims(sub=None, aud=None)) == (
            "missing_claim",
            "The token lacks the claim(s): aud, sub.",
        )

    def test_issuer(self) -> None:
        """The verifier picks the issuer by ``iss``; the policy checks it again on its own."""
        assert refusal(claims(iss="https://other.example")) == (
            "invalid_issuer",
            "The token's issuer is not trusted.",
        )
        policy = jose.ClaimsPolicy(issuer=ISS, audiences=frozenset({AUD}), required=frozenset())
        policy.check({}, {"aud": AUD}, NOW)  # no iss, none required: nothing to compare

    @pytest.mark.parametrize("name", ["sub", "jti", "client_id", "sid"])
    @pytest.mark.parametrize("value", ["", "x" * 256, 5, ["a"]])
    def test_string_claims(self, name: str, value: Any) -> None:
        assert refusal(claims(**{name: value})) == (
            "invalid_claim",
            f"The '{name}' claim must be a short string.",
        )

    @pytest.mark.parametrize("name", ["sub", "jti", "client_id", "sid"])
    def test_string_claims_up_to_255_characters(self, name: str) -> None:
        assert accepted(claims(**{name: "x"})) and accepted(claims(**{name: "x" * 255}))

    def test_audience(self) -> None:
        assert refusal(claims(aud=["https://a.example", "https://b.example"])) == (
            "invalid_audience",
            "The token is not meant for this service (aud).",
        )
        assert accepted(claims(aud=["https://a.example", AUD]))

    @pytest.mark.parametrize("aud", [5, [], [AUD, 5], None])
    def test_audience_of_the_wrong_type(self, aud: Any) -> None:
        body = claims() | {"aud": aud}
        assert refusal(body) == (
            "invalid_claim",
            "The 'aud' claim must be a string or a list of strings.",
        )

    @pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
    @pytest.mark.parametrize("value", ["1", True, [1], float("nan"), float("inf"), 10**400])
    def test_times_must_be_numbers(self, name: str, value: Any) -> None:
        assert refusal(claims(**{name: value})) == (
            "invalid_claim",
            f"The '{name}' claim must be a number.",
        )

    def test_scope_of_the_wrong_type(self) -> None:
        for value in (5, ["a", 5], {"a": 1}):
            assert refusal(claims(scope=value)) == (
                "invalid_claim",
                "The 'scope' claim must be a string.",
            )


class TestTimes:
    """Each bound exactly: the last accepted value and the first refused one."""

    def test_expiry(self) -> None:
        assert accepted(claims(exp=NOW - 30 + 0.001, iat=NOW - 60))
        assert refusal(claims(exp=NOW - 30, iat=NOW - 60)) == ("expired", "The token has expired.")

    def test_not_before(self) -> None:
        assert accepted(claims(nbf=NOW + 30))
        assert refusal(claims(nbf=NOW + 30.001)) == (
            "not_yet_valid",
            "The token is not valid yet (nbf).",
        )

    def test_issued_in_the_future(self) -> None:
        assert accepted(claims(iat=NOW + 30, exp=NOW + 600))
        assert refusal(claims(iat=NOW + 30.001, exp=NOW + 600)) == (
            "not_yet_valid",
            "The token was issued in the future (iat).",
        )

    def test_lifetime(self) -> None:
        assert accepted(claims(iat=NOW - 100, exp=NOW - 100 + 3600))
        assert refusal(claims(iat=NOW - 100, exp=NOW - 100 + 3600.001)) == (
            "invalid_claim",
            "The token's lifetime is longer than allowed.",
        )

    def test_lifetime_without_iat_counts_from_now(self) -> None:
        policy = jose.ClaimsPolicy(
            issuer=ISS, audiences=frozenset({AUD}), required=frozenset(), max_lifetime=3600.0
        )
        policy.check({}, {"exp": NOW + 3600}, NOW)
        with pytest.raises(jose.TokenError, match="lifetime"):
            policy.check({}, {"exp": NOW + 3600.001}, NOW)
        # An iat far in the past makes the lifetime long even when exp is near.
        with pytest.raises(jose.TokenError, match="lifetime"):
            policy.check({}, {"exp": NOW + 10, "iat": NOW - 3600}, NOW)

    def test_no_lifetime_bound(self) -> None:
        policy = jose.ClaimsPolicy(
            issuer=ISS, audiences=frozenset({AUD}), required=frozenset(), max_lifetime=None
        )
        policy.check({}, {"exp": NOW + 10**9, "iat": NOW}, NOW)

    @pytest.mark.parametrize("limit", [2**53, -(2**53)])
    def test_numeric_date_limits(self, limit: int) -> None:
        assert jose._number({"t": limit}, "t") == float(limit)
        with pytest.raises(jose.TokenError):
            jose._number({"t": limit + (1 if limit > 0 else -1)}, "t")


class TestScopes:
    @pytest.mark.parametrize(
        ("body", "expected"),
        [
            ({"scope": "a b  c"}, {"a", "b", "c"}),
            ({"scp": ["a", "b"]}, {"a", "b"}),
            ({"scp": "a b"}, {"a", "b"}),  # Entra ID
            ({"scope": "a", "scp": ["b"]}, {"a"}),  # scope first
            ({}, set()),
        ],
    )
    def test_scope_or_scp(self, body: dict[str, Any], expected: set[str]) -> None:
        assert jose.scopes(body) == frozenset(expected)


def test_constants_in_json_are_refused_by_name() -> None:
    for constant in ("NaN", "Infinity", "-Infinity"):
        with pytest.raises(ValueError, match="not a JSON object"):
            jose.json_object(f'{{"a": {constant}}}'.encode())
    with pytest.raises(ValueError, match="NaN is not JSON"):
        jose._refuse_constant("NaN")


class TestKeys:
    @pytest.fixture
    def jwk(self) -> dict[str, Any]:
        from cryptography.hazmat.primitives.asymmetric import ec

        public = ec.generate_private_key(ec.SECP256R1()).public_key()
        return jose.VerificationKey("ES256", public, "k1").to_jwk()

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"use": "enc"}, "the key is not for signatures (use)"),
            ({"key_ops": ["encrypt"]}, "the key is not for verification (key_ops)"),
            ({"key_ops": "verify"}, "the key is not for verification (key_ops)"),
            ({"kid": 5}, "kid must be a string"),
            ({"alg": "ES384"}, "the key is for ES384, not ES256"),
            ({"alg": "XX1"}, "the key is for XX1, not ES256"),
            ({"kty": "RSA"}, "a 'RSA' key cannot verify ES256"),
        ],
    )
    def test_refused_jwks(self, jwk: dict[str, Any], change: dict[str, Any], message: str) -> None:
        with pytest.raises(jose.InvalidKey) as caught:
            jose.VerificationKey.from_jwk({**jwk, **change}, alg="ES256")
        assert str(caught.value) == message

    @pytest.mark.parametrize("alg", [None, 5, "none", "HS512"])
    def test_unsupported_or_missing_algorithm(self, jwk: dict[str, Any], alg: Any) -> None:
        body = {k: v for k, v in jwk.items() if k != "alg"} | ({} if alg is None else {"alg": alg})
        with pytest.raises(jose.InvalidKey) as caught:
            jose.VerificationKey.from_jwk(body)
        assert str(caught.value) == f"unsupported or missing algorithm {alg!r}"

    def test_not_an_object(self) -> None:
        with pytest.raises(jose.InvalidKey, match="^a JWK must be a JSON object$"):
            jose.VerificationKey.from_jwk([])  # type: ignore[arg-type]

    def test_verify_key_ops_accepted(self, jwk: dict[str, Any]) -> None:
        key = jose.VerificationKey.from_jwk({**jwk, "key_ops": ["verify"], "use": "sig"})
        assert key.alg == "ES256" and key.kid == "k1"

    def test_secret_keeps_its_kid(self) -> None:
        key = jose.VerificationKey.from_secret("s" * 32, "hs-1")
        assert key.kid == "hs-1" and key.key == b"s" * 32
        assert jose.VerificationKey.from_secret(b"b" * 32).key == b"b" * 32

    def test_a_token_must_name_its_keys_algorithm(self) -> None:
        key = jose.VerificationKey.from_secret("s" * 32)
        jws = jose.JWS({"alg": "HS384"}, b"{}", b"a.b", b"sig")
        with pytest.raises(jose.TokenError) as caught:
            jose.verify_signature(jws, key)
        assert (caught.value.code, caught.value.detail, str(caught.value)) == (
            "alg_not_allowed",
            "The token's algorithm does not match its key.",
            "The token's algorithm does not match its key.",
        )


def segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return jose.b64encode(raw)


def token(header: Any = None, payload: bytes = b"{}", signature: bytes = b"sig") -> str:
    header = {"alg": "ES256"} if header is None else header
    return f"{segment(header)}.{jose.b64encode(payload)}.{jose.b64encode(signature)}"


def token_of_length(length: int) -> str:
    """A well-formed token of exactly ``length`` characters (the signature pads it)."""
    for kid in ("k", "kk", "kkk"):
        for size in range(length * 3 // 4 - 64, length * 3 // 4 + 4):
            value = token({"alg": "ES256", "kid": kid}, b"{}", b"s" * size)
            if len(value) == length:
                return value
    raise AssertionError(length)  # pragma: no cover


def parse_refusal(value: str, max_length: int = 8192) -> tuple[str, str]:
    with pytest.raises(jose.TokenError) as caught:
        jose.parse(value, max_length)
    return caught.value.code, caught.value.detail


class TestParse:
    """``jose.parse``: each refusal with its code and message, each bound on both sides."""

    def test_a_compact_jws_taken_apart(self) -> None:
        value = token({"alg": "ES256", "kid": "k1"}, b'{"sub":"a"}', b"\x00\xff")
        jws = jose.parse(value)
        assert jws.header == {"alg": "ES256", "kid": "k1"}
        assert (jws.alg, jws.kid) == ("ES256", "k1")
        assert jws.payload == b'{"sub":"a"}' and jws.signature == b"\x00\xff"
        assert jws.signing_input == value.rsplit(".", 1)[0].encode("ascii")

    def test_the_token_length_bound(self) -> None:
        value = token()
        assert jose.parse(value, len(value)).alg == "ES256"
        assert parse_refusal(value, len(value) - 1) == ("malformed", "The token is too long.")

    def test_the_default_length_bound_is_8192(self) -> None:
        value = token_of_length(8192)
        assert jose.parse(value).alg == "ES256"
        with pytest.raises(jose.TokenError, match="^The token is too long.$"):
            jose.parse(token_of_length(8193))

    @pytest.mark.parametrize(
        "value",
        ["a.b", "a.b.c.d", ".e30.c2ln", "eyJhbGciOiJFUzI1NiJ9.e30.", "", "abc"],
    )
    def test_not_three_segments(self, value: str) -> None:
        assert parse_refusal(value) == ("malformed", "The token is not a compact JWS.")

    def test_an_empty_payload_segment_is_a_jws(self) -> None:
        jws = jose.parse(token(payload=b""))
        assert jws.payload == b""
        with pytest.raises(jose.TokenError) as caught:
            jose.decode_claims(jws)
        assert (caught.value.code, caught.value.detail) == (
            "malformed",
            "The token's payload is not a JSON object.",
        )

    def test_the_header_length_bound(self) -> None:
        def header_of(length: int) -> str:
            # {"alg":"ES256","p":"xxx"}: 1536 bytes encode to exactly 2048 characters.
            base = len('{"alg": "ES256", "p": ""}')
            return segment({"alg": "ES256", "p": "x" * (length * 3 // 4 - base)})

        at_bound = header_of(jose.MAX_HEADER_BYTES)
        assert len(at_bound) == jose.MAX_HEADER_BYTES == 2048
        assert jose.parse(f"{at_bound}.e30.c2ln").alg == "ES256"
        over = at_bound + "A"
        assert parse_refusal(f"{over}.e30.c2ln") == ("malformed", "The token header is too long.")

    @pytest.mark.parametrize(
        "value",
        [
            "e30=.e30.c2ln",  # padding
            "e30.e3+.c2ln",  # not the URL alphabet
            "e31.e30.c2ln",  # non-canonical: trailing bits set
            "e30.e30.c2lnZ",  # a signature of impossible length (4k + 1)
            "e30.e30Ab.c2ln",  # a payload of impossible length
            "e30.e3.c2ln",  # a payload with trailing bits set
            f"{segment(b'[1]')}.e30.c2ln",  # a header that is no object
            f"{segment(b'not json')}.e30.c2ln",
            f"{segment(bytes([0xFF, 0xFE]))}.e30.c2ln",  # not UTF-8
        ],
    )
    def test_not_base64url_json(self, value: str) -> None:
        assert parse_refusal(value) == ("malformed", "The token is not valid base64url JSON.")

    @pytest.mark.parametrize("alg", [None, "", 5, ["ES256"], True])
    def test_no_algorithm(self, alg: Any) -> None:
        header = {} if alg is None else {"alg": alg}
        assert parse_refusal(token(header)) == (
            "malformed",
            "The token header names no algorithm.",
        )

    @pytest.mark.parametrize("alg", ["none", "NONE", "None", "nOnE"])
    def test_unsigned(self, alg: str) -> None:
        assert parse_refusal(token({"alg": alg})) == (
            "alg_not_allowed",
            "Unsigned tokens are not accepted.",
        )

    def test_an_algorithm_merely_containing_none_is_left_to_the_allowlist(self) -> None:
        assert jose.parse(token({"alg": "nonesuch"})).alg == "nonesuch"

    def test_critical_extensions(self) -> None:
        assert parse_refusal(token({"alg": "ES256", "crit": ["exp"]})) == (
            "unsupported_crit",
            "The token requires a header extension we lack.",
        )
        assert parse_refusal(token({"alg": "ES256", "b64": False})) == (
            "unsupported_crit",
            "Unencoded payloads (RFC 7797) are not accepted.",
        )

    @pytest.mark.parametrize("name", sorted(jose.FORBIDDEN_HEADERS))
    def test_keys_elsewhere(self, name: str) -> None:
        assert parse_refusal(token({"alg": "ES256", name: "x"})) == (
            "header_not_allowed",
            "The token header points at a key elsewhere.",
        )

    @pytest.mark.parametrize("kid", ["", "k" * 201, 5, ["k"], {}])
    def test_malformed_key_id(self, kid: Any) -> None:
        header = {"alg": "ES256", "kid": kid}
        assert parse_refusal(token(header)) == ("malformed", "The token's key id is malformed.")

    @pytest.mark.parametrize("kid", ["k", "k" * 200])
    def test_key_id_lengths(self, kid: str) -> None:
        assert jose.parse(token({"alg": "ES256", "kid": kid})).kid == kid

    def test_a_null_key_id_is_no_key_id(self) -> None:
        assert jose.parse(token({"alg": "ES256", "kid": None})).kid is None

    def test_kid_of_a_jws_built_by_hand(self) -> None:
        assert jose.JWS({"alg": "ES256", "kid": 5}, b"", b"", b"").kid is None
        assert jose.JWS({"alg": "ES256"}, b"", b"", b"").kid is None


class TestCodec:
    @pytest.mark.parametrize(
        ("segment", "message"),
        [
            ("e30=", "not base64url"),
            ("e3+/", "not base64url"),
            ("e3 0", "not base64url"),
            ("e30Ab", "not base64url"),
            ("é30", "not base64url"),
            ("e31", "non-canonical base64url"),
            ("QR", "non-canonical base64url"),
        ],
    )
    def test_b64decode_refusals(self, segment: str, message: str) -> None:
        with pytest.raises(ValueError) as caught:
            jose.b64decode(segment)
        assert str(caught.value) == message

    @pytest.mark.parametrize(
        "raw", [b"", b"\x00", b"ab", b"abc", b"\x00\x00\x17", b"\xff\xff\xff", bytes(range(256))]
    )
    def test_b64_round_trip_without_padding(self, raw: bytes) -> None:
        encoded = jose.b64encode(raw)
        assert "=" not in encoded and jose.b64decode(encoded) == raw

    @pytest.mark.parametrize(
        "raw",
        [
            b'{"a": 1, "a": 2}',
            b"[]",
            b'"a"',
            b"\xff{}",
            b'{"a": NaN}',
            b'{"a": "\\ud800"}',
            b'{"a": "\\uDBFF"}',
            b'{"a": "\\udc00x"}',
            b"[" * 100_000,
        ],
        ids=[
            "duplicate",
            "array",
            "string",
            "not-utf8",
            "nan",
            "lone-high",
            "upper",
            "lone-low",
            "deep",
        ],
    )
    def test_json_object_refusals(self, raw: bytes) -> None:
        with pytest.raises(ValueError) as caught:
            jose.json_object(raw)
        assert str(caught.value) == "not a JSON object"

    def test_json_object_accepts_surrogate_pairs_and_nesting(self) -> None:
        assert jose.json_object(b'{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}
        assert jose.json_object(b'{"a": {"a": 1}, "b": [1, 1]}') == {"a": {"a": 1}, "b": [1, 1]}

    def test_duplicates_are_named(self) -> None:
        with pytest.raises(ValueError) as caught:
            jose._object_without_duplicates([("a", 1), ("b", 2), ("a", 3)])
        assert str(caught.value) == "duplicate member 'a'"
        assert jose._object_without_duplicates([("a", 1), ("b", 2)]) == {"a": 1, "b": 2}


def ec_key(kid: str | None = None, alg: str = "ES256") -> jose.VerificationKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1()}[alg]
    return jose.VerificationKey(alg, ec.generate_private_key(curve).public_key(), kid)


class TestKeySet:
    def test_by_kid(self) -> None:
        first, second = ec_key("a"), ec_key("b")
        keys = jose.KeySet([first, second])
        assert keys.find("a", "ES256") is first and keys.find("b", "RS256") is second
        assert keys.find("c", "ES256") is None
        assert "a" in keys and "c" not in keys and len(keys) == 2

    def test_without_kid_only_a_lone_key_of_the_algorithm(self) -> None:
        lone = ec_key("a")
        assert jose.KeySet([lone]).find(None, "ES256") is lone
        assert jose.KeySet([lone]).find(None, "ES384") is None
        assert jose.KeySet([lone, ec_key("b")]).find(None, "ES256") is None
        assert jose.KeySet([lone, ec_key("b", "ES384")]).find(None, "ES256") is lone
        assert jose.KeySet().find(None, "ES256") is None

    def test_the_first_key_of_a_repeated_kid_wins(self) -> None:
        first, second = ec_key("a"), ec_key("a")
        keys = jose.KeySet([first, second])
        assert keys.find("a", "ES256") is first and len(keys) == 2

    def test_jwks_lists_every_key(self) -> None:
        keys = jose.KeySet([ec_key("a"), ec_key("b", "ES384"), ec_key()])
        listed = keys.jwks()["keys"]
        assert [(jwk.get("kid"), jwk["alg"], jwk["use"]) for jwk in listed] == [
            ("a", "ES256", "sig"),
            (None, "ES256", "sig"),
            ("b", "ES384", "sig"),
        ]
        assert all("d" not in jwk for jwk in listed)

    def test_looks_like_jws(self) -> None:
        assert jose.looks_like_jws("a.b.c", 5) and jose.looks_like_jws("..", 2)
        assert jose.looks_like_jws("a-_.b.c", 7)
        assert not jose.looks_like_jws("a.b.c", 4)
        for value in ("a.b", "a.b.c.d", "a.b.c=", "a+.b.c", "a.b.c\n", "é.b.c"):
            assert not jose.looks_like_jws(value, 100), value

    def test_a_secret_is_never_published(self) -> None:
        with pytest.raises(jose.InvalidKey, match="^a shared secret is never published$"):
            jose.VerificationKey.from_secret("s" * 32).to_jwk()


class TestCheckKey:
    @pytest.mark.parametrize(
        ("alg", "key", "message"),
        [
            ("HS512", b"s" * 64, "unsupported algorithm 'HS512'"),
            ("RS256", b"s" * 64, "RS256 needs an RSA public key"),
            ("PS256", "rsa-1024", "RSA keys need at least 2048 bits"),
            ("ES256", b"s", "ES256 needs an EC public key on secp256r1"),
            ("ES256", "ec-384", "ES256 needs an EC public key on secp256r1"),
            ("EdDSA", b"s", "EdDSA needs an Ed25519 or Ed448 public key"),
            ("HS256", "ec-384", "HS256 needs a secret"),
            ("HS256", b"s" * 31, "HS256 secrets need at least 256 bits"),
            (
                "HS256",
                b"  -----BEGIN PUBLIC KEY-----" + b"x" * 32,
                "an HS256 secret must not be a PEM, SSH or JWK public key",
            ),
            (
                "HS256",
                b"ssh-ed25519 " + b"x" * 32,
                "an HS256 secret must not be a PEM, SSH or JWK public key",
            ),
            (
                "HS256",
                b'{"kty": "RSA"' + b"x" * 32,
                "an HS256 secret must not be a PEM, SSH or JWK public key",
            ),
        ],
    )
    def test_refusals(self, alg: str, key: Any, message: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, rsa

        if key == "rsa-1024":
            key = rsa.generate_private_key(65537, 1024).public_key()
        elif key == "ec-384":
            key = ec.generate_private_key(ec.SECP384R1()).public_key()
        with pytest.raises(jose.InvalidKey) as caught:
            jose.check_key(alg, key)
        assert str(caught.value) == message

    def test_accepted(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed448, ed25519, rsa

        jose.check_key("HS256", b"s" * 32)
        jose.check_key("PS256", rsa.generate_private_key(65537, 2048).public_key())
        jose.check_key("EdDSA", ed25519.Ed25519PrivateKey.generate().public_key())
        jose.check_key("EdDSA", ed448.Ed448PrivateKey.generate().public_key())
        jose.check_key("ES384", ec_key(alg="ES384").key)

    def test_a_private_key_keeps_only_its_public_half(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.generate_private_key(ec.SECP256R1())
        assert isinstance(jose.public_half(private), ec.EllipticCurvePublicKey)
        assert jose.public_half(b"secret") == b"secret"
        assert jose.key_type("PS384") == "RSA" and jose.key_type("EdDSA") == "OKP"


class TestSignatures:
    def test_verify_signature(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.generate_private_key(ec.SECP256R1())
        key = jose.VerificationKey("ES256", private.public_key(), "k1")
        signed = jose._ALGORITHMS["ES256"].sign(b"a.b", private)
        good = jose.JWS({"alg": "ES256"}, b"", b"a.b", signed)
        jose.verify_signature(good, key)
        assert key.verify(b"a.b", signed) is True
        for jws in (
            jose.JWS({"alg": "ES256"}, b"", b"a.c", signed),
            jose.JWS({"alg": "ES256"}, b"", b"a.b", signed[:-1] + bytes([signed[-1] ^ 1])),
            jose.JWS({"alg": "ES256"}, b"", b"a.b", b""),
        ):
            assert key.verify(jws.signing_input, jws.signature) is False
            with pytest.raises(jose.TokenError) as caught:
                jose.verify_signature(jws, key)
            assert (caught.value.code, caught.value.detail) == (
                "bad_signature",
                "The token's signature is invalid.",
            )

    def test_misuse_fails_closed(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = jose.VerificationKey("EdDSA", ed25519.Ed25519PrivateKey.generate().public_key())
        # No signature where bytes belong: the key raises TypeError, and the answer is "no".
        assert key.verify(b"a.b", None) is False  # type: ignore[arg-type]

    def test_hs256(self) -> None:
        import hashlib
        import hmac

        key = jose.VerificationKey.from_secret("s" * 32)
        signature = hmac.digest(b"s" * 32, b"a.b", hashlib.sha256)
        jose.verify_signature(jose.JWS({"alg": "HS256"}, b"", b"a.b", signature), key)
        with pytest.raises(jose.TokenError, match="signature is invalid"):
            jose.verify_signature(jose.JWS({"alg": "HS256"}, b"", b"a.b", signature[1:]), key)


class TestFromPemAndJwk:
    @pytest.fixture
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        return (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def test_from_pem(self, pem: bytes) -> None:
        key = jose.VerificationKey.from_pem(pem.decode(), "ES256", "k1")
        assert (key.alg, key.kid) == ("ES256", "k1")
        assert jose.VerificationKey.from_pem(pem, "ES256").kid is None

    def test_from_pem_refusals(self, pem: bytes) -> None:
        with pytest.raises(jose.InvalidKey, match="^a PEM key cannot verify 'HS256'$"):
            jose.VerificationKey.from_pem(pem, "HS256")
        with pytest.raises(jose.InvalidKey, match="^unreadable ES256 key: "):
            jose.VerificationKey.from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA", "ES256")
        with pytest.raises(jose.InvalidKey, match="^unreadable ES384 key: .*curve"):
            jose.VerificationKey.from_pem(pem, "ES384")  # PyJWT checks the curve first
        with pytest.raises(jose.InvalidKey, match="^unreadable RS256 key: not an RSA public key$"):
            jose.VerificationKey.from_pem(pem, "RS256")

    def test_a_jwk_without_use_is_for_signatures(self) -> None:
        jwk = ec_key("k1").to_jwk()
        del jwk["use"]
        assert jose.VerificationKey.from_jwk(jwk).kid == "k1"

    def test_an_unreadable_jwk_says_why(self) -> None:
        jwk = {**ec_key("k1").to_jwk(), "x": "AAAA"}
        with pytest.raises(jose.InvalidKey) as caught:
            jose.VerificationKey.from_jwk(jwk)
        assert str(caught.value).startswith("unreadable ES256 key: ")


def test_claims_that_must_hold_exact_values() -> None:
    policy = jose.ClaimsPolicy(
        issuer=ISS,
        audiences=frozenset({AUD}),
        required=frozenset(),
        values=(("kind", "a"), ("token_type", "access")),
    )
    now = 1_800_000_000
    policy.check({}, {"token_type": "access", "kind": "a", "exp": now + 60}, now)
    for claims in ({"token_type": "refresh", "kind": "a"}, {"kind": "a"}, {"token_type": "access"}):
        with pytest.raises(jose.TokenError) as caught:
            policy.check({}, {**claims, "exp": now + 60}, now)
        assert caught.value.code == "invalid_claim"
    with pytest.raises(jose.TokenError, match="^The 'token_type' claim must be 'access'.$"):
        policy.check({}, {"kind": "a", "token_type": "x"}, now)
