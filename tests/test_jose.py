"""The pure claim rules of ``apiauth.jose``: every refusal with its code and message, and every
boundary on both sides (mutation testing found these untested through HTTP alone)."""

from __future__ import annotations

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
    @pytest.mark.parametrize("header", [{}, {"typ": "JWT"}, {"typ": 5}])
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
