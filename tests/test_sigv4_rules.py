"""The pure rules of ``apiauth.sigv4``: every refusal with its code and message, each bound on
both sides, and the canonical parts the AWS suite leaves untouched (mutation testing found
these checked only by status code through HTTP)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import time
from typing import Any

import hypothesis
import pytest

from apiauth import sigv4
from apiauth.sigv4 import AWS, Credential, Policy, Presented, Scheme, SignatureError, SignedRequest

NOW = datetime.datetime(2026, 11, 23, 12, 34, 56, tzinfo=datetime.UTC)
AMZ_DATE = "20261123T123456Z"
CREDENTIAL = "AKIDEXAMPLE/20261123/global/apiauth/aws4_request"
SIG = "a" * 64
BODY_SHA = hashlib.sha256(b"{}").hexdigest()


def refusal(call: Any, *args: Any, **kwargs: Any) -> tuple[str, str]:
    with pytest.raises(SignatureError) as caught:
        call(*args, **kwargs)
    assert str(caught.value) == caught.value.detail
    return caught.value.code, caught.value.detail


def authorization(**fields: str) -> str:
    values = {"Credential": CREDENTIAL, "SignedHeaders": "host;x-amz-date", "Signature": SIG}
    values.update(fields)
    return "AWS4-HMAC-SHA256 " + ", ".join(f"{k}={v}" for k, v in values.items())


def presigned_pairs(**changes: str | None) -> list[tuple[bytes, bytes]]:
    params: dict[str, str | None] = {
        "Algorithm": "AWS4-HMAC-SHA256",
        "Credential": CREDENTIAL,
        "Date": AMZ_DATE,
        "Expires": "300",
        "SignedHeaders": "host",
        "Signature": SIG,
    }
    params.update(changes)
    return [(f"X-Amz-{k}".encode(), v.encode()) for k, v in params.items() if v is not None]


def request(headers: dict[str, list[str]] | None = None, body_sha: str = sigv4.EMPTY_SHA256) -> Any:
    base = {"host": ["api.example"], "x-amz-date": [AMZ_DATE]}
    return SignedRequest("GET", b"/v1/ping", base if headers is None else headers, body_sha)


def presented(**changes: Any) -> Presented:
    values: dict[str, Any] = {
        "credential": Credential.parse(CREDENTIAL, AWS),
        "signed_headers": ("host", "x-amz-date"),
        "signature": SIG,
        "amz_date": AMZ_DATE,
    }
    values.update(changes)
    return Presented(**values)


class TestCanonicalParts:
    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            ("", "/"),
            ("/", "/"),
            ("/a/b/", "/a/b/"),
            ("/a/b", "/a/b"),
            ("//a//b//", "/a/b/"),
            ("/a/./b/../c/", "/a/c/"),
            ("/..", "/"),
            ("/a/..", "/"),
            ("relative/x", "relative/x"),
            (b"/a/b/", b"/a/b/"),
            (b"/a/./b/../", b"/a/"),
            (b"", b"/"),
        ],
    )
    def test_normalize_path(self, path: str | bytes, expected: str | bytes) -> None:
        assert sigv4.normalize_path(path) == expected

    @pytest.mark.parametrize(
        ("path", "normal"),
        [
            (b"/", True),
            (b"/v1/orders", True),
            (b"/v1/orders/", True),
            (b"/v1/.well-known", True),
            (b"/v1/..", False),
            (b"/v1//orders", False),
            (b"//", False),
            (b"", False),
            (b"relative/x", True),
            (b"./x", False),
            (b"../x", False),
            (b"...", True),
        ],
    )
    def test_is_normal_path(self, path: bytes, normal: bool) -> None:
        assert sigv4.is_normal_path(path) is normal
        assert normal is (sigv4.normalize_path(path) == path)

    @hypothesis.given(
        hypothesis.strategies.lists(
            hypothesis.strategies.sampled_from([b"/", b".", b"..", b"a", b"%2F", b"~"]),
            max_size=12,
        ).map(b"".join)
    )
    def test_is_normal_path_agrees_with_normalizing(self, path: bytes) -> None:
        """The quick substring tests never call a path normal that normalising changes."""
        assert sigv4.is_normal_path(path) is (sigv4.normalize_path(path) == path)

    def test_canonical_uri_encodes_again_and_keeps_slash_and_tilde(self) -> None:
        assert sigv4.canonical_uri("/a~b/c%20d/é") == "/a~b/c%2520d/%C3%A9"
        assert sigv4.canonical_uri(b"/x/./y") == "/x/y"
        assert sigv4.canonical_uri(b"/x/./y", normalize=False) == "/x/./y"
        assert sigv4.canonical_uri("") == "/"

    def test_parse_query(self) -> None:
        assert sigv4.parse_query("a=1&&b=x%20y+z&c&d=e=f") == [
            (b"a", b"1"),
            (b"b", b"x y z"),
            (b"c", b""),
            (b"d", b"e=f"),
        ]
        assert sigv4.parse_query(b"%FF=%00") == [(b"\xff", b"\x00")]
        assert sigv4.parse_query("é=1") == [("é".encode(), b"1")]

    def test_canonical_query_encodes_all_but_unreserved_and_sorts(self) -> None:
        pairs = [(b"b", b"2"), (b"a/b", b"x/y~z *"), (b"a", b"2"), (b"a", b"10")]
        assert sigv4.canonical_query(pairs) == "a=10&a=2&a%2Fb=x%2Fy~z%20%2A&b=2"

    def test_canonical_headers_trim_and_join(self) -> None:
        headers = {"x-a": ["  one   two  ", "three"], "host": ["h"]}
        assert sigv4.canonical_headers(headers, ["host", "x-a"]) == "host:h\nx-a:one two,three\n"

    def test_signing_key_and_signature_are_the_published_ones(self) -> None:
        # AWS's worked example (docs: "Examples of how to derive a signing key").
        key = sigv4.signing_key(
            AWS, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"
        )
        assert key.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        assert sigv4.signature(b"k", "é") == hmac.new(b"k", "é".encode(), "sha256").hexdigest()

    def test_string_to_sign(self) -> None:
        digest = hashlib.sha256("é".encode()).hexdigest()
        assert sigv4.string_to_sign(AWS, AMZ_DATE, "s/c/o", "é") == (
            f"AWS4-HMAC-SHA256\n{AMZ_DATE}\ns/c/o\n{digest}"
        )

    def test_a_branded_scheme(self) -> None:
        acme = Scheme(algorithm="ACME-HMAC-SHA256", secret_prefix="ACME", header_prefix="X-Acme-")
        assert acme.date_header == "x-acme-date"
        assert acme.content_sha256_header == "x-acme-content-sha256"
        assert acme.param("Signature") == "X-Acme-Signature"
        assert sigv4.signing_key(acme, "s", "20260101", "r", "svc") != sigv4.signing_key(
            AWS, "s", "20260101", "r", "svc"
        )


class TestDates:
    def test_parse_date_reads_every_field(self) -> None:
        assert sigv4.parse_date("20261123T123456Z") == NOW
        assert sigv4.parse_date("20261123T123456Z").tzinfo is datetime.UTC
        assert sigv4.format_date(NOW) == AMZ_DATE
        plus_one = NOW.astimezone(datetime.timezone(datetime.timedelta(hours=1)))
        assert sigv4.format_date(plus_one) == AMZ_DATE

    def test_format_date_is_utc_whatever_the_local_zone(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("TZ", "Asia/Tokyo")
        time.tzset()
        try:
            assert sigv4.format_date(NOW) == AMZ_DATE
            signer = sigv4.Signer("AKIDEXAMPLE", "secret")
            assert signer.sign("GET", "https://h/", when=NOW)["X-Amz-Date"] == AMZ_DATE
        finally:
            monkeypatch.undo()
            time.tzset()

    @pytest.mark.parametrize("value", ["2026-11-23T12:34:56Z", "20261123T1234Z", "", "x" * 16])
    def test_malformed(self, value: str) -> None:
        assert refusal(sigv4.parse_date, value) == (
            "malformed_date",
            "The request date must read YYYYMMDDTHHMMSSZ.",
        )

    @pytest.mark.parametrize(
        "value",
        [
            "20261323T123456Z",
            "20261123T253456Z",
            "00001123T000000Z",
            "20260229T000000Z",
            "20261231T235960Z",
            "20261100T000000Z",
            "20261123T240000Z",
        ],
    )
    def test_impossible(self, value: str) -> None:
        assert refusal(sigv4.parse_date, value) == (
            "malformed_date",
            "The request date is not a valid date.",
        )


class TestCredentialScope:
    def test_parsed(self) -> None:
        credential = Credential.parse(CREDENTIAL, AWS)
        assert credential == Credential("AKIDEXAMPLE", "20261123", "global", "apiauth")
        assert credential.scope == "20261123/global/apiauth"

    @pytest.mark.parametrize(
        "value",
        [
            "AKID/20261123/global/apiauth",
            "AKID/20261123/global/apiauth/aws4_request/extra",
            "AKID/20261123/global/apiauth/aws4_request/aws4_request",
            "AKID/20261123/global/apiauth/acme_request",
        ],
    )
    def test_shape(self, value: str) -> None:
        assert refusal(Credential.parse, value, AWS) == (
            "malformed_credential",
            "Credential must read <access key id>/<date>/<region>/<service>/aws4_request.",
        )

    @pytest.mark.parametrize("akid", ["", "AK-ID", "A" * 129])
    def test_access_key_id(self, akid: str) -> None:
        value = f"{akid}/20261123/global/apiauth/aws4_request"
        assert refusal(Credential.parse, value, AWS) == (
            "malformed_credential",
            "Malformed access key id.",
        )

    def test_longest_access_key_id(self) -> None:
        value = f"{'A' * 128}/20261123/global/apiauth/aws4_request"
        assert Credential.parse(value, AWS).access_key_id == "A" * 128

    @pytest.mark.parametrize("date", ["2026112", "2026-11-23", "202611234"])
    def test_scope_date(self, date: str) -> None:
        value = f"AKID/{date}/global/apiauth/aws4_request"
        assert refusal(Credential.parse, value, AWS) == (
            "malformed_credential",
            "The credential scope date is malformed.",
        )

    @pytest.mark.parametrize(
        ("region", "service"), [("Global", "apiauth"), ("global", "-x"), ("global", "a" * 65)]
    )
    def test_region_and_service(self, region: str, service: str) -> None:
        value = f"AKID/20261123/{region}/{service}/aws4_request"
        assert refusal(Credential.parse, value, AWS) == (
            "malformed_credential",
            "Malformed region or service.",
        )


class TestSignedHeaders:
    def test_at_the_limit(self) -> None:
        names = sorted(f"h{i:02d}" for i in range(sigv4.MAX_SIGNED_HEADERS))
        assert sigv4.parse_signed_headers(";".join(names)) == tuple(names)

    @pytest.mark.parametrize(
        "value",
        [
            "",
            ";".join(sorted(f"h{i:02d}" for i in range(sigv4.MAX_SIGNED_HEADERS + 1))),
            "Host",
            "x-b;x-a",
            "host;host",
            "host;;x-a",
        ],
    )
    def test_refused(self, value: str) -> None:
        assert refusal(sigv4.parse_signed_headers, value) == (
            "malformed_signed_headers",
            "SignedHeaders must list lowercase header names, sorted, separated by ';'.",
        )


class TestAuthorizationHeader:
    def test_fields_in_any_order(self) -> None:
        value = f"AWS4-HMAC-SHA256 Signature={SIG},SignedHeaders=host,  Credential={CREDENTIAL}"
        parsed = sigv4.parse_authorization(value, AWS, AMZ_DATE, [(b"q", b"1")])
        assert parsed == Presented(
            Credential.parse(CREDENTIAL, AWS), ("host",), SIG, AMZ_DATE, query=[(b"q", b"1")]
        )
        assert not parsed.presigned and parsed.expires is None

    @pytest.mark.parametrize(
        "value",
        [
            f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host, Signature={SIG}",
            f"AWS4-HMAC-SHA256 Credential={CREDENTIAL},SignedHeaders=host,Signature={SIG}",
            f"AWS4-HMAC-SHA256  Credential={CREDENTIAL}, SignedHeaders=host, Signature={SIG}",
            f" AWS4-HMAC-SHA256 Credential={CREDENTIAL} , SignedHeaders=host, Signature={SIG} ",
            f"AWS4-HMAC-SHA256 SignedHeaders=host, Credential={CREDENTIAL}, Signature={SIG}",
            f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host, Signature={SIG}\xa0",
        ],
    )
    def test_as_signers_write_it_or_not(self, value: str) -> None:
        """Headers as signers write them take a precompiled match, the rest the general
        parser: both read the same fields."""
        parsed = sigv4.parse_authorization(value, AWS, AMZ_DATE, [])
        assert parsed == Presented(Credential.parse(CREDENTIAL, AWS), ("host",), SIG, AMZ_DATE)

    def test_validated_once_each(self) -> None:
        """A client's credential scope and signed headers are validated on first sight and
        remembered; a refusal is not, and the memory stays bounded."""
        assert Credential.parse(CREDENTIAL, AWS) is Credential.parse(CREDENTIAL, AWS)
        assert sigv4.parse_signed_headers("host;x-amz-date") is sigv4.parse_signed_headers(
            "host;x-amz-date"
        )
        for _ in range(2):
            assert refusal(Credential.parse, "AK-ID/20261123/global/apiauth/aws4_request", AWS)
        for i in range(sigv4.MEMO_SIZE + 10):
            Credential.parse(f"AKID{i}/20261123/global/apiauth/aws4_request", AWS)
            sigv4.parse_signed_headers(f"host;x-{i}")
        assert len(sigv4._credentials) <= sigv4.MEMO_SIZE
        assert len(sigv4._signed_headers) <= sigv4.MEMO_SIZE
        sigv4._signed_headers.clear()
        made_up = ";".join(f"x-{i:03}-{'a' * 60}" for i in range(10))
        assert sigv4.parse_signed_headers(made_up) == tuple(made_up.split(";"))
        assert sigv4._signed_headers == {}, "a list longer than clients send is not kept"

    def test_a_branded_scheme_is_parsed_by_its_own_names(self) -> None:
        acme = Scheme(algorithm="ACME1-HMAC-SHA256", secret_prefix="ACME1", terminator="acme")
        credential = "AKID/20261123/global/apiauth/acme"
        value = f"ACME1-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature={SIG}"
        parsed = sigv4.parse_authorization(value, acme, AMZ_DATE, [])
        assert parsed.credential == Credential("AKID", "20261123", "global", "apiauth")
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, [])[0] == (
            "unsupported_algorithm"
        )
        assert refusal(Credential.parse, credential, AWS)[0] == "malformed_credential"

    def test_algorithm(self) -> None:
        value = authorization().replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512")
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, []) == (
            "unsupported_algorithm",
            "Sign requests with AWS4-HMAC-SHA256.",
        )

    @pytest.mark.parametrize(
        "value",
        [
            authorization() + ", Signature=" + SIG,
            authorization() + ", Junk",
            authorization(Credential=CREDENTIAL + "=x").replace("=x", "") + ",",
        ],
    )
    def test_malformed(self, value: str) -> None:
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, []) == (
            "malformed_authorization",
            "Malformed Authorization header.",
        )

    def test_a_value_holding_an_equals_sign_is_one_field(self) -> None:
        value = authorization(Signature=SIG + "=")
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, []) == (
            "malformed_signature",
            "The signature must be 64 hex digits.",
        )

    @pytest.mark.parametrize("extra", ["", ", Extra=1"])
    def test_fields(self, extra: str) -> None:
        value = (
            f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, SignedHeaders=host{extra}"
            if not extra
            else authorization() + extra
        )
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, []) == (
            "malformed_authorization",
            "The Authorization header must hold Credential, SignedHeaders and Signature.",
        )

    def test_date_header_required(self) -> None:
        assert refusal(sigv4.parse_authorization, authorization(), AWS, None, []) == (
            "missing_date",
            "The X-Amz-Date header is required.",
        )

    @pytest.mark.parametrize("signature", ["A" * 64, "a" * 63, "a" * 65, "g" * 64])
    def test_signature(self, signature: str) -> None:
        value = authorization(Signature=signature)
        assert refusal(sigv4.parse_authorization, value, AWS, AMZ_DATE, []) == (
            "malformed_signature",
            "The signature must be 64 hex digits.",
        )

    def test_signed_in_both_places(self) -> None:
        query = [(b"X-Amz-Signature", SIG.encode())]
        assert refusal(Policy().presented, authorization(), AMZ_DATE, query) == (
            "ambiguous",
            "Sign in the Authorization header or in the URL, not both.",
        )

    def test_another_scheme_is_not_ours(self) -> None:
        assert Policy().presented("Bearer abc", None, []) is None
        assert Policy().presented(None, None, [(b"q", b"1")]) is None


class TestPresignedQuery:
    def test_parsed_without_its_signature(self) -> None:
        pairs = [(b"a", b"1"), *presigned_pairs(), (b"X-Amz-Security-Token", b"t")]
        parsed = sigv4.parse_presigned(pairs, AWS)
        assert parsed is not None and parsed.presigned and parsed.expires == 300
        assert parsed.signature == SIG and parsed.amz_date == AMZ_DATE
        assert parsed.signed_headers == ("host",)
        assert (b"X-Amz-Signature", SIG.encode()) not in parsed.query
        assert parsed.query[0] == (b"a", b"1") and len(parsed.query) == 7

    def test_a_query_without_signature_parameters_is_not_presigned(self) -> None:
        assert sigv4.parse_presigned([(b"X-Amz-Date", AMZ_DATE.encode())], AWS) is None

    @pytest.mark.parametrize("present", ["Algorithm", "Credential"])
    def test_half_a_presigned_url(self, present: str) -> None:
        pairs = [p for p in presigned_pairs(Signature=None) if p[0] == f"X-Amz-{present}".encode()]
        assert refusal(sigv4.parse_presigned, pairs, AWS) == (
            "malformed_query",
            "The presigned URL has no signature.",
        )

    def test_repeated_parameter(self) -> None:
        pairs = presigned_pairs() + [(b"X-Amz-Expires", b"60")]
        assert refusal(sigv4.parse_presigned, pairs, AWS) == (
            "malformed_query",
            "X-Amz-Expires appears more than once.",
        )

    def test_non_ascii_parameter(self) -> None:
        pairs = presigned_pairs(Date="2026é")
        assert refusal(sigv4.parse_presigned, pairs, AWS) == (
            "malformed_query",
            "X-Amz-Date is malformed.",
        )

    def test_missing_parameters_are_listed(self) -> None:
        pairs = presigned_pairs(Date=None, SignedHeaders=None)
        assert refusal(sigv4.parse_presigned, pairs, AWS) == (
            "malformed_query",
            "A presigned URL needs X-Amz-Date, X-Amz-SignedHeaders.",
        )

    def test_algorithm(self) -> None:
        assert refusal(sigv4.parse_presigned, presigned_pairs(Algorithm="HMAC"), AWS) == (
            "unsupported_algorithm",
            "Sign requests with AWS4-HMAC-SHA256.",
        )

    @pytest.mark.parametrize("expires", ["", "-1", "1.5", "12345678", "3e3"])
    def test_expires(self, expires: str) -> None:
        assert refusal(sigv4.parse_presigned, presigned_pairs(Expires=expires), AWS) == (
            "malformed_query",
            "X-Amz-Expires must be seconds.",
        )

    def test_longest_expires(self) -> None:
        parsed = sigv4.parse_presigned(presigned_pairs(Expires="9999999"), AWS)
        assert parsed is not None and parsed.expires == 9_999_999


class TestPolicy:
    def check(self, policy: Policy | None = None, at: datetime.datetime = NOW, **kw: Any) -> str:
        return (policy or Policy()).check(presented(**kw), request(), at)

    def test_service_and_region(self) -> None:
        other = Credential("AKID", "20261123", "global", "s3")
        assert refusal(self.check, credential=other) == (
            "wrong_service",
            "Sign for the service “apiauth”.",
        )
        other = Credential("AKID", "20261123", "eu-west-1", "apiauth")
        assert refusal(self.check, credential=other) == (
            "wrong_region",
            "This region is not accepted here.",
        )
        policy = Policy(regions=frozenset({"global", "eu-west-1"}))
        assert self.check(policy, credential=other) == sigv4.EMPTY_SHA256

    def test_scope_date(self) -> None:
        other = Credential("AKID", "20261122", "global", "apiauth")
        assert refusal(self.check, credential=other) == (
            "scope_date_mismatch",
            "The credential scope date is not the request's date.",
        )

    def test_window_bounds(self) -> None:
        skew = datetime.timedelta(seconds=300)
        assert self.check(at=NOW + skew) == sigv4.EMPTY_SHA256
        assert refusal(self.check, at=NOW + skew + datetime.timedelta(microseconds=1)) == (
            "signature_expired",
            "The signature has expired.",
        )
        assert self.check(at=NOW - skew) == sigv4.EMPTY_SHA256
        assert refusal(self.check, at=NOW - skew - datetime.timedelta(microseconds=1)) == (
            "signature_not_yet_valid",
            "The request date is ahead of the server's clock.",
        )

    def test_presigned_lifetime_bounds(self) -> None:
        policy = Policy(max_expires=600)

        def check(expires: int, at: datetime.datetime = NOW) -> str:
            signed = presented(presigned=True, expires=expires, signed_headers=("host",))
            return policy.check(signed, request({"host": ["api.example"]}), at)

        assert check(1) == check(600) == sigv4.EMPTY_SHA256
        for out_of_range in (0, 601):
            assert refusal(check, out_of_range) == (
                "expires_out_of_range",
                "A presigned URL may be valid for 1 to 600 seconds.",
            )
        assert check(600, NOW + datetime.timedelta(seconds=600)) == sigv4.EMPTY_SHA256
        assert refusal(check, 600, NOW + datetime.timedelta(seconds=600.001))[0] == (
            "signature_expired"
        )
        # The presigned form has no date header to sign.
        assert check(60, NOW + datetime.timedelta(seconds=59)) == sigv4.EMPTY_SHA256


class TestSignedHeaderPolicy:
    def test_required_headers_are_listed(self) -> None:
        headers = {
            "host": ["h"],
            "x-amz-date": [AMZ_DATE],
            "x-amz-meta": ["m"],
            "content-type": ["application/json"],
        }
        signed = SignedRequest("POST", b"/", headers, BODY_SHA)
        assert refusal(Policy().check_signed_headers, presented(signed_headers=()), signed) == (
            "unsigned_header",
            "These headers must be signed: content-type, host, x-amz-date, x-amz-meta.",
        )

    def test_content_type_only_with_a_body(self) -> None:
        headers = {"host": ["h"], "x-amz-date": [AMZ_DATE], "content-type": ["text/plain"]}
        empty = SignedRequest("GET", b"/", headers, sigv4.EMPTY_SHA256)
        Policy().check_signed_headers(presented(), empty)

    def test_the_first_absent_signed_header_is_named(self) -> None:
        names = ("host", "x-amz-date", "x-b", "x-c")
        assert refusal(
            Policy().check_signed_headers, presented(signed_headers=names), request()
        ) == ("missing_signed_header", "Signed headers missing from the request: x-b.")


class TestPayloadHash:
    def payload(self, claimed: list[str] | None, policy: Policy | None = None) -> str:
        headers = {"host": ["h"]}
        if claimed is not None:
            headers["x-amz-content-sha256"] = claimed
        return (policy or Policy()).payload_hash(SignedRequest("POST", b"/", headers, BODY_SHA))

    def test_computed_when_not_claimed(self) -> None:
        assert self.payload(None) == BODY_SHA

    def test_claimed_must_match_in_any_case(self) -> None:
        assert self.payload([f" {BODY_SHA.upper()} "]) == BODY_SHA.upper()
        assert refusal(self.payload, [sigv4.EMPTY_SHA256]) == (
            "content_sha256_mismatch",
            "The content hash header does not match the body.",
        )

    def test_claimed_twice(self) -> None:
        assert refusal(self.payload, [BODY_SHA, BODY_SHA]) == (
            "content_sha256_mismatch",
            "The content hash header appears more than once.",
        )

    def test_unsigned_payload(self) -> None:
        assert refusal(self.payload, ["UNSIGNED-PAYLOAD"]) == (
            "unsigned_payload",
            "The body must be signed.",
        )
        allowed = Policy(allow_unsigned_payload=True)
        assert self.payload(["UNSIGNED-PAYLOAD"], allowed) == "UNSIGNED-PAYLOAD"

    def test_check_returns_the_payload_hash(self) -> None:
        headers = {"host": ["h"], "x-amz-date": [AMZ_DATE], "x-amz-content-sha256": [BODY_SHA]}
        signed = presented(signed_headers=("host", "x-amz-content-sha256", "x-amz-date"))
        posted = SignedRequest("POST", b"/", headers, BODY_SHA)
        assert Policy().check(signed, posted, NOW) == BODY_SHA


class TestStringToSign:
    def test_the_path_is_normalized_unless_told_not_to(self) -> None:
        signed = SignedRequest("GET", b"/a/./b", {"host": ["h"], "x-amz-date": ["d"]}, "p")
        canonical, _ = Policy().string_to_sign(presented(), signed, "p")
        assert canonical.split("\n")[1] == "/a/b"
        canonical, _ = Policy(normalize=False).string_to_sign(presented(), signed, "p")
        assert canonical.split("\n")[1] == "/a/./b"


class TestSigner:
    signer = sigv4.Signer("AKIDEXAMPLE", "secret")

    def test_adds_host_date_and_body_hash(self) -> None:
        added = self.signer.sign("post", "https://u@api.example:8443/v1/x?b=2&a=1", when=NOW)
        assert added["Host"] == "api.example:8443"
        assert added["X-Amz-Date"] == AMZ_DATE
        assert added["X-Amz-Content-Sha256"] == sigv4.EMPTY_SHA256
        assert "SignedHeaders=host;x-amz-content-sha256;x-amz-date," in added["Authorization"]
        assert added["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={CREDENTIAL}, ")

    def test_a_given_host_and_hash_are_kept(self) -> None:
        added = self.signer.sign(
            "GET",
            "https://api.example/",
            {"host": "other", "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"},
            when=NOW,
        )
        assert "Host" not in added and "X-Amz-Content-Sha256" not in added
        plain = self.signer.sign("GET", "https://api.example/", when=NOW, sign_content_sha256=False)
        assert "X-Amz-Content-Sha256" not in plain
        assert "SignedHeaders=host;x-amz-date," in plain["Authorization"]

    def test_userinfo_is_not_part_of_the_signed_host(self) -> None:
        with_user = self.signer.presign("https://u:p@api.example/v1/x", 60, when=NOW)
        plain = self.signer.presign("https://api.example/v1/x", 60, when=NOW)
        assert with_user.rpartition("X-Amz-Signature=")[2] == plain.rpartition("=")[2]
        signed = self.signer.sign("GET", "https://u:p@api.example/v1/x", when=NOW)
        assert signed == self.signer.sign("GET", "https://api.example/v1/x", when=NOW)

    def test_presign_defaults_to_get(self) -> None:
        url = self.signer.presign("https://api.example/v1/x", 60, when=NOW)
        assert url == self.signer.presign("https://api.example/v1/x", 60, when=NOW, method="get")
        assert url != self.signer.presign("https://api.example/v1/x", 60, when=NOW, method="PUT")
        assert "X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" in url
