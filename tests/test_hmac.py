"""HMAC (SigV4) authentication over HTTP through DRF views, with a real Redis and database."""

from __future__ import annotations

import datetime
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.utils import timezone

from apiauth import sigv4
from apiauth.models import HMACCredential
from apiauth.store import RedisStore, get_store
from tests.conftest import RedisServer
from tests.factories import make_hmac, make_user
from tests.utils import HOST, round_trips, send

pytestmark = pytest.mark.django_db

ORDER = b'{"sku": "abc-123", "quantity": 2}'


# The refusals HMACAuthentication words itself, one message each (the canonicalizer's own,
# tested in test_sigv4_rules.py, vary with the case).
DETAILS = {
    "unknown_access_key": "Unknown access key id.",
    "signature_mismatch": "The signature does not match the request.",
    "presigned_method": "Presigned URLs are for GET and HEAD requests.",
    "non_canonical_path": "Paths with '.', '..' or empty segments cannot be signed.",
    "replayed": "This signed request was already received; sign each request anew.",
}


def audited(caplog: Any) -> list[tuple[str, str, str | None]]:
    """The failed authentications logged: (reason, credential kind, credential id)."""
    return [
        (r.apiauth["reason"], r.apiauth["credential_kind"], r.apiauth["credential_id"])
        for r in caplog.records
        if getattr(r, "apiauth", {}).get("event") == "auth_failure"
    ]


def refused(response: Any, code: str, status: int = 401) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == code, response.json()
    if code in DETAILS:
        assert response.json()["detail"] == DETAILS[code]
    if status == 401:
        assert response["WWW-Authenticate"].startswith("AWS4-HMAC-SHA256 realm=")
        assert "Date" in response


def verdict(request: Any) -> str:
    """What ``HMACAuthentication`` makes of a Django request: the access key id it accepted,
    or the code it refused with."""
    from rest_framework import exceptions
    from rest_framework.request import Request

    from apiauth.authentication import HMACAuthentication

    try:
        result = HMACAuthentication().authenticate(Request(request))
    except exceptions.AuthenticationFailed as refusal:
        return str(refusal.get_codes())
    assert result is not None
    return str(result[1].id)


class TestAccepted:
    def test_signed_get(self) -> None:
        credential = make_hmac(scopes=["orders:read"], owner=make_user())
        response = send(credential)
        assert response.status_code == 200, response.content
        assert response.json() == {
            "kind": "hmac",
            "id": credential[0].access_key_id,
            "scopes": ["orders:read"],
            "plan": "free",
            "owner": "alice",
        }

    def test_signed_post_with_json_body(self) -> None:
        response = send(make_hmac(), "POST", "/v1/orders", ORDER)
        assert response.status_code == 201, response.content
        assert response.json() == {"sku": "abc-123", "quantity": 2}

    def test_query_and_escaped_path(self) -> None:
        response = send(make_hmac(), path="/v1/orders?b=2&a=hello%20world&a=x%2Fy")
        assert response.status_code == 200, response.content

    def test_an_environ_without_query_string(self) -> None:
        """PEP 3333: ``QUERY_STRING`` "may be empty or absent"."""
        from django.test import RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import HMACAuthentication

        obj, secret = make_hmac()
        signed = sigv4.Signer(obj.access_key_id, secret).sign(
            "GET", f"http://{HOST}/v1/ping", {"Host": HOST}, b""
        )
        request = RequestFactory().get("/v1/ping", headers={"Host": HOST, **signed})
        del request.META["QUERY_STRING"]
        result = HMACAuthentication().authenticate(Request(request))
        assert result is not None and result[1].id == obj.access_key_id

    @pytest.mark.parametrize(("signed_body", "accepted"), [(b"", True), (ORDER, False)])
    def test_the_body_hashed_is_the_one_django_reads(
        self, signed_body: bytes, accepted: bool
    ) -> None:
        """A WSGI request that announces no body (no ``Content-Length``, as when chunked)
        has none for Django, whatever the stream holds: the view reads ``b""``, so that is
        what the signature must cover."""
        from django.test import RequestFactory

        obj, secret = make_hmac()
        headers = {"Host": HOST, "Content-Type": "application/json"}
        headers.update(
            sigv4.Signer(obj.access_key_id, secret).sign(
                "POST", f"http://{HOST}/v1/orders", headers, signed_body
            )
        )
        content_type = headers.pop("Content-Type")
        request = RequestFactory().generic(
            "POST", "/v1/orders", ORDER, content_type, headers=headers, CONTENT_LENGTH=""
        )
        assert request.body == b""
        expected = obj.access_key_id if accepted else "content_sha256_mismatch"
        assert verdict(request) == expected

    @pytest.mark.parametrize(("signed_body", "accepted"), [(ORDER, True), (b"", False)])
    def test_a_stream_a_middleware_replaced_is_the_one_hashed(
        self, signed_body: bytes, accepted: bool
    ) -> None:
        """Middleware that hands Django the chunked body of a request announcing no length
        (``request._stream = environ["wsgi.input"]``) gives the view that body: the signature
        must cover it, whatever ``Content-Length`` says."""
        from django.test import RequestFactory

        obj, secret = make_hmac()
        headers = {"Host": HOST}
        signer = sigv4.Signer(obj.access_key_id, secret)
        headers.update(signer.sign("POST", f"http://{HOST}/v1/orders", headers, signed_body))
        request = RequestFactory().generic("POST", "/v1/orders", b"", headers=headers)
        request._stream = io.BytesIO(ORDER)
        expected = obj.access_key_id if accepted else "content_sha256_mismatch"
        assert verdict(request) == expected
        assert request.body == ORDER

    def test_a_body_read_before_is_the_one_hashed(self) -> None:
        """Middleware that replaced the body (decompressed it, say) hands the view that body:
        the signature covers it, not the stream's bytes."""
        from django.test import RequestFactory

        obj, secret = make_hmac()
        headers = {"Host": HOST}
        signer = sigv4.Signer(obj.access_key_id, secret)
        headers.update(signer.sign("POST", f"http://{HOST}/v1/orders", headers, ORDER))
        request = RequestFactory().generic("POST", "/v1/orders", b"", headers=headers)
        request._body = ORDER
        assert verdict(request) == obj.access_key_id

    def test_get_may_be_retried(self) -> None:
        credential = make_hmac()
        assert send(credential).status_code == 200
        when = timezone.now()
        assert send(credential, when=when).status_code == 200
        assert send(credential, when=when).status_code == 200

    def test_scopes_apply(self) -> None:
        response = send(make_hmac(scopes=["orders:read"]), "POST", "/v1/orders", ORDER)
        assert response.status_code == 403 and response.json()["code"] == "insufficient_scope"

    def test_warm_request_makes_no_query(self, django_assert_num_queries: Any) -> None:
        credential = make_hmac()
        assert send(credential).status_code == 200
        with django_assert_num_queries(0):
            assert send(credential).status_code == 200


class TestReplay:
    def test_post_is_accepted_once(self) -> None:
        credential = make_hmac()
        when = timezone.now()
        first = send(credential, "POST", "/v1/orders", ORDER, when=when)
        assert first.status_code == 201
        refused(send(credential, "POST", "/v1/orders", ORDER, when=when), "replayed")

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
    def test_every_unsafe_method_is_accepted_once(self, method: str) -> None:
        credential = make_hmac()
        when = timezone.now()
        first = send(credential, method, "/v1/orders", ORDER, when=when)
        assert first.status_code != 401, first.content
        refused(send(credential, method, "/v1/orders", ORDER, when=when), "replayed")

    @pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
    def test_safe_methods_may_be_sent_again(self, method: str) -> None:
        credential = make_hmac()
        when = timezone.now()
        first = send(credential, method, "/v1/orders", when=when)
        again = send(credential, method, "/v1/orders", when=when)
        assert first.status_code == again.status_code != 401

    def test_a_new_signature_is_a_new_request(self) -> None:
        credential = make_hmac()
        now = timezone.now()
        assert send(credential, "POST", "/v1/orders", ORDER, when=now).status_code == 201
        later = now + datetime.timedelta(seconds=1)
        assert send(credential, "POST", "/v1/orders", ORDER, when=later).status_code == 201

    # A view with our throttle claims in its round trip; one without, in the copy's confirmation.
    WRITES = pytest.mark.parametrize(
        ("path", "body", "created"), [("/v1/orders", ORDER, 201), ("/v1/whoami", b"{}", 200)]
    )

    @WRITES
    def test_replay_store_down_fails_closed(
        self, _redis: RedisServer, path: str, body: bytes, created: int
    ) -> None:
        credential = make_hmac()
        assert send(credential).status_code == 200  # warm
        _redis.stop()
        response = send(credential, "POST", path, body)
        assert response.status_code == 503
        assert response.json()["code"] == "replay_check_unavailable"
        assert response["Retry-After"]

    @WRITES
    def test_a_stale_copy_does_not_make_a_post_its_own_replay(
        self, _redis: RedisServer, path: str, body: bytes, created: int
    ) -> None:
        """The store finds the worker's copy stale (a change elsewhere), before it makes the
        claim, and the request is authenticated again from the database: the claim is made
        then, once, or the request would be refused as a replay of itself."""
        from apiauth import cache

        obj, _secret = credential = make_hmac()
        assert send(credential).status_code == 200  # the worker's copy
        _redis.client().delete(cache.version_key(obj.lineage_id))
        when = timezone.now()
        response = send(credential, "POST", path, body, when=when)
        assert response.status_code == created, response.content
        assert len(_redis.client().keys("*replay*")) == 1
        refused(send(credential, "POST", path, body, when=when), "replayed")

    def test_a_signed_write_is_one_round_trip(self, _redis: RedisServer) -> None:
        """The claim rides in the throttle's script with the limits and the copy's version."""
        credential = make_hmac(plan="pro")
        assert send(credential).status_code == 200  # the worker's copy
        client = _redis.client()
        sent = round_trips(client, lambda: send(credential, "POST", "/v1/orders", ORDER))
        assert sent == ["EVALSHA"]
        # A replay is refused in that same round trip, and recorded as one.
        when = timezone.now() + datetime.timedelta(seconds=2)  # another request than above
        first = send(credential, "POST", "/v1/orders", ORDER, when=when)
        replay = send(credential, "POST", "/v1/orders", ORDER, when=when)
        assert first.status_code == 201 and replay.status_code == 401
        assert replay.json()["code"] == "replayed"

    def test_a_view_without_our_throttle_claims_on_its_own(self, _redis: RedisServer) -> None:
        credential = make_hmac()
        assert send(credential).status_code == 200
        client, when = _redis.client(), timezone.now()
        sent = round_trips(client, lambda: send(credential, "POST", "/v1/whoami", b"{}", when=when))
        assert sent == ["EVALSHA"]  # the claim rides in the copy's confirmation
        again = send(credential, "POST", "/v1/whoami", b"{}", when=when)
        assert again.status_code == 401 and again.json()["code"] == "replayed"

    @pytest.mark.parametrize("relay", ["relay", "throttled-relay"])
    @pytest.mark.parametrize(("to", "answered"), [("whoami", 200), ("orders", 201)])
    def test_a_request_handed_on_to_another_view_is_not_its_own_replay(
        self, relay: str, to: str, answered: int
    ) -> None:
        """The second view authenticates the request again: its claim, made by the first
        (in the copy's confirmation or the throttle's script), is not taken anew."""
        credential = make_hmac(plan="pro")
        assert send(credential).status_code == 200  # the worker's copy
        when = timezone.now()
        response = send(credential, "POST", f"/v1/{relay}/{to}", ORDER, when=when)
        assert response.status_code == answered, response.content
        refused(send(credential, "POST", f"/v1/{relay}/{to}", ORDER, when=when), "replayed")

    def test_the_claim_lives_in_redis_for_twice_the_window(self, _redis: RedisServer) -> None:
        obj, _secret = credential = make_hmac()
        assert isinstance(get_store(), RedisStore)
        assert send(credential, "POST", "/v1/orders", ORDER).status_code == 201
        (key,) = _redis.client().keys("*replay*")
        # In the credential's lineage slot, where the throttle's script makes it.
        tag = "{k" + str(obj.lineage_id).replace("-", "") + "}"
        assert isinstance(key, bytes) and key.decode().startswith(
            f"rl:{tag}:replay:{obj.access_key_id}:"
        )
        assert 2 * 300 * 1000 - 10_000 < _redis.client().pttl(key) <= 2 * 300 * 1000


def set_header(name: str, value: str) -> Any:
    return lambda r: r["headers"].__setitem__(name, value)


class TestEveryComponentIsSigned:
    """Each canonical component changed after signing: the signature no longer matches."""

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            (lambda r: r.__setitem__("method", "PUT"), "signature_mismatch"),
            (lambda r: r.__setitem__("path", "/v1/orders?"), "signature_mismatch"),
            (lambda r: r.__setitem__("path", "/v1/orders?limit=2"), "signature_mismatch"),
            (lambda r: r.__setitem__("body", ORDER.replace(b"2", b"3")), "content_sha256_mismatch"),
            (set_header("X-Custom", "changed"), "signature_mismatch"),
        ],
        ids=["method", "path", "query-value", "body-byte", "signed-header"],
    )
    def test_post(self, change: Any, code: str) -> None:
        credential = make_hmac()
        response = send(
            credential,
            "POST",
            "/v1/orders?limit=1",
            ORDER,
            headers={"X-Custom": "original"},
            tamper=change,
        )
        refused(response, code)

    def test_body_byte_without_the_hash_header(self) -> None:
        credential = make_hmac()

        def change_body(request: dict[str, Any]) -> None:
            request["body"] = ORDER.replace(b"2", b"3")

        response = send(
            credential, "POST", "/v1/orders", ORDER, tamper=change_body, hash_header=False
        )
        refused(response, "signature_mismatch")

    def test_date(self) -> None:
        credential = make_hmac()
        later = sigv4.format_date(timezone.now() + datetime.timedelta(seconds=5))
        refused(send(credential, tamper=set_header("X-Amz-Date", later)), "signature_mismatch")

    def test_scope_date(self) -> None:
        credential = make_hmac()

        def change(request: dict[str, Any]) -> None:
            auth = request["headers"]["Authorization"]
            today = sigv4.format_date(timezone.now())[:8]
            request["headers"]["Authorization"] = auth.replace(f"/{today}/", "/20200101/")

        refused(send(credential, tamper=change), "scope_date_mismatch")

    @pytest.mark.parametrize(
        ("region", "service", "code"),
        [("eu-west-1", "apiauth", "wrong_region"), ("global", "s3", "wrong_service")],
    )
    def test_region_and_service(self, region: str, service: str, code: str) -> None:
        obj, secret = credential = make_hmac()
        signer = sigv4.Signer(obj.access_key_id, secret, region=region, service=service)
        refused(send(credential, signer=signer), code)

    def test_region_rewritten_after_signing(self) -> None:
        credential = make_hmac()

        def change(request: dict[str, Any]) -> None:
            auth = request["headers"]["Authorization"]
            request["headers"]["Authorization"] = auth.replace("/global/", "/eu-west-1/")

        with override_settings(APIAUTH=settings_with(HMAC={"REGIONS": ["global", "eu-west-1"]})):
            refused(send(credential, tamper=change), "signature_mismatch")

    def test_wrong_secret(self) -> None:
        obj, _secret = credential = make_hmac()
        signer = sigv4.Signer(obj.access_key_id, "not-the-secret")
        refused(send(credential, signer=signer), "signature_mismatch")


def settings_with(**overrides: Any) -> dict[str, Any]:
    from django.conf import settings

    return {**settings.APIAUTH, **overrides}


class TestPolicy:
    def test_expired_timestamp(self) -> None:
        when = timezone.now() - datetime.timedelta(minutes=6)
        refused(send(make_hmac(), when=when), "signature_expired")

    def test_future_timestamp(self) -> None:
        when = timezone.now() + datetime.timedelta(minutes=6)
        refused(send(make_hmac(), when=when), "signature_not_yet_valid")

    def test_window_is_configurable(self) -> None:
        when = timezone.now() - datetime.timedelta(minutes=6)
        with override_settings(APIAUTH=settings_with(HMAC={"MAX_CLOCK_SKEW": 900})):
            assert send(make_hmac(), when=when).status_code == 200

    def test_unsigned_amz_header(self) -> None:
        refused(send(make_hmac(), tamper=set_header("X-Amz-Meta", "x")), "unsigned_header")

    def test_unsigned_content_type(self) -> None:
        obj, secret = credential = make_hmac()

        def unsign_content_type(request: dict[str, Any]) -> None:
            headers = {k: v for k, v in request["headers"].items() if k != "Content-Type"}
            for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-Sha256"):
                headers.pop(name)
            headers.update(
                sigv4.Signer(obj.access_key_id, secret).sign(
                    "POST", f"http://{HOST}/v1/orders", headers, ORDER
                )
            )
            request["headers"] = {**headers, "Content-Type": "application/json"}

        refused(
            send(credential, "POST", "/v1/orders", ORDER, tamper=unsign_content_type),
            "unsigned_header",
        )

    def test_unsigned_payload_is_refused_by_default(self) -> None:
        obj, secret = credential = make_hmac()

        def unsigned(request: dict[str, Any]) -> None:
            headers = {"Host": HOST, "X-Amz-Content-Sha256": "UNSIGNED-PAYLOAD"}
            signer = sigv4.Signer(obj.access_key_id, secret)
            headers.update(
                signer.sign("GET", f"http://{HOST}/v1/ping", headers, sign_content_sha256=False)
            )
            request["headers"] = headers

        refused(send(credential, tamper=unsigned), "unsigned_payload")
        with override_settings(APIAUTH=settings_with(HMAC={"ALLOW_UNSIGNED_PAYLOAD": True})):
            assert send(credential, tamper=unsigned).status_code == 200

    @pytest.mark.parametrize("wire", ["/v1/x/../ping", "/v1/./ping", "/v1//ping"])
    def test_dot_segments_in_the_path(self, wire: str) -> None:
        # Signed as sent (normalised), routed by a catch-all as sent: refused, not guessed.
        def as_routed(request: dict[str, Any]) -> None:
            request["path"], request["extra"]["RAW_URI"] = "/v1/ping", wire

        refused(send(make_hmac(), path=wire, tamper=as_routed), "non_canonical_path")

    def test_body_too_large(self) -> None:
        with override_settings(APIAUTH=settings_with(HMAC={"MAX_BODY_SIZE": 16})):
            response = send(make_hmac(), "POST", "/v1/orders", ORDER)
        assert response.status_code == 413

    def test_a_body_of_exactly_the_limit(self) -> None:
        limit = settings_with(HMAC={"MAX_BODY_SIZE": len(ORDER)})
        with override_settings(APIAUTH=limit):
            response = send(make_hmac(), "POST", "/v1/orders", ORDER)
        assert response.status_code == 201, response.content

    def test_a_content_length_that_is_no_number(self) -> None:
        """A 400, not the 500 Django's ``request.body`` would raise (gunicorn refuses such a
        request itself; a server that passes it on must not crash us)."""

        def garbled(request: dict[str, Any]) -> None:
            request["extra"]["CONTENT_LENGTH"] = "twelve"

        response = send(make_hmac(), tamper=garbled)
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "malformed_content_length"
        assert response.json()["detail"] == "The Content-Length header is not a number."

    def test_authorization_header_too_large(self) -> None:
        tamper = set_header("Authorization", "AWS4-HMAC-SHA256 " + "A" * 9000)
        response = send(make_hmac(), tamper=tamper)
        refused(response, "malformed")
        assert response.json()["detail"] == "The signature is too large."

    def test_authorization_cannot_sign_itself(self) -> None:
        """A signature cannot cover the header that carries it: listed as signed, it is
        missing from what the verifier signs."""
        obj, secret = make_hmac()
        headers = {"Host": HOST, "Authorization": "x"}
        signer = sigv4.Signer(obj.access_key_id, secret)
        signed = signer.sign("GET", f"http://{HOST}/v1/ping", headers, b"")
        assert "authorization" in signed["Authorization"].split("SignedHeaders=")[1]
        refused(Client().get("/v1/ping", headers={**headers, **signed}), "missing_signed_header")


class TestBrandedScheme:
    """The scheme's names, service and region come from settings: a deployment brands it
    without code, and then only its own scheme is accepted."""

    @pytest.fixture
    def acme(self, settings: Any) -> sigv4.Scheme:
        settings.APIAUTH = {
            **settings.APIAUTH,
            "HMAC": {
                "ALGORITHM": "ACME-HMAC-SHA256",
                "SECRET_PREFIX": "ACME",
                "HEADER_PREFIX": "X-Acme-",
                "SERVICE": "orders",
                "REGIONS": ["eu-west-1"],
            },
        }
        return sigv4.Scheme("ACME-HMAC-SHA256", "ACME", "X-Acme-")

    def test_a_branded_request_is_accepted(self, acme: sigv4.Scheme) -> None:
        obj, secret = credential = make_hmac()
        signer = sigv4.Signer(obj.access_key_id, secret, "eu-west-1", "orders", acme)
        response = send(credential, "POST", "/v1/orders", ORDER, signer=signer)
        assert response.status_code == 201, response.content

    def test_anything_else_is_not(self, acme: sigv4.Scheme) -> None:
        obj, secret = credential = make_hmac()
        aws = send(credential)  # AWS's names: not our scheme any more
        assert aws.status_code == 401 and aws.json()["code"] == "not_authenticated"
        for region, service, code in (
            ("global", "orders", "wrong_region"),
            ("eu-west-1", "apiauth", "wrong_service"),
        ):
            signer = sigv4.Signer(obj.access_key_id, secret, region, service, acme)
            response = send(credential, signer=signer)
            assert response.status_code == 401 and response.json()["code"] == code
            assert response["WWW-Authenticate"].startswith('ACME-HMAC-SHA256 realm="api"')

    def test_the_policy_is_built_once_per_settings(self, settings: Any) -> None:
        from apiauth.authentication import HMACAuthentication

        policy = HMACAuthentication().get_policy()
        assert HMACAuthentication().get_policy() is policy
        assert policy.max_skew == 300 and policy.regions == frozenset({"global"})
        settings.APIAUTH = {
            **settings.APIAUTH,
            "HMAC": {
                "MAX_CLOCK_SKEW": 600,
                "PRESIGNED_MAX_EXPIRES": 60,
                "ALLOW_UNSIGNED_PAYLOAD": True,
            },
        }
        changed = HMACAuthentication().get_policy()
        assert changed is not policy
        assert (changed.max_skew, changed.max_expires, changed.allow_unsigned_payload) == (
            600,
            60,
            True,
        )


class TestCredentialLifecycle:
    def test_unknown_access_key(self) -> None:
        _obj, secret = credential = make_hmac()
        signer = sigv4.Signer("AAAAAAAAAAAAAAAAAAAA", secret)
        refused(send(credential, signer=signer), "unknown_access_key")

    def test_refusals_are_audited_with_the_access_key_id(self, caplog: Any) -> None:
        """Once the access key id is read, every refusal names it (never the secret)."""
        obj, secret = credential = make_hmac()
        refused(
            send(credential, signer=sigv4.Signer("AAAAAAAAAAAAAAAAAAAA", secret)),
            "unknown_access_key",
        )
        query_added = lambda request: request.__setitem__("path", "/v1/ping?x=1")  # noqa: E731
        refused(send(credential, tamper=query_added), "signature_mismatch")
        when = timezone.now()
        assert send(credential, "POST", "/v1/orders", ORDER, when=when).status_code == 201
        refused(send(credential, "POST", "/v1/orders", ORDER, when=when), "replayed")
        late = timezone.now() - datetime.timedelta(minutes=6)
        response = send(credential, when=late)
        refused(response, "signature_expired")
        assert response.json()["detail"] == "The signature has expired."  # the policy's words
        HMACCredential.objects.get(pk=obj.pk).revoke(reason="leaked")
        refused(send(credential), "revoked")
        assert audited(caplog) == [
            ("unknown_access_key", "hmac", "AAAAAAAAAAAAAAAAAAAA"),
            ("signature_mismatch", "hmac", obj.access_key_id),
            ("replayed", "hmac", obj.access_key_id),
            ("signature_expired", "hmac", obj.access_key_id),
            ("revoked", "hmac", obj.access_key_id),
        ]
        assert secret not in caplog.text

    def test_a_mismatch_read_from_the_database_is_not_read_again(
        self, _redis: RedisServer, django_assert_num_queries: Any
    ) -> None:
        """Only a worker's copy is checked against the database before a refusal; a
        credential just read from it (here: Redis is down, so nothing is cached) is not."""
        credential = make_hmac()
        query_added = lambda request: request.__setitem__("path", "/v1/ping?x=1")  # noqa: E731
        _redis.stop()
        try:
            with django_assert_num_queries(1):
                refused(send(credential, tamper=query_added), "signature_mismatch")
        finally:
            _redis.start()

    def test_a_locked_out_address_in_strict_mode(self) -> None:
        """``FAILED_AUTH_LOCKOUT = "all"``: a locked address is refused before any lookup,
        a correctly signed request too."""
        credential = make_hmac()
        locked = settings_with(
            FAILED_AUTH_LIMITS={"rate": "1/hour", "burst": 2}, FAILED_AUTH_LOCKOUT="all"
        )
        wrong = lambda request: request.__setitem__("path", "/v1/ping?x=1")  # noqa: E731
        with override_settings(APIAUTH=locked):
            for _ in range(2):
                refused(send(credential, tamper=wrong), "signature_mismatch")
            response = send(credential)
        assert response.status_code == 429, response.content
        assert response.json()["code"] == "too_many_failures"
        assert 3590 <= int(response["Retry-After"]) <= 3600

    def test_revoked(self) -> None:
        credential = make_hmac()
        assert send(credential).status_code == 200
        HMACCredential.objects.get(pk=credential[0].pk).revoke(reason="leaked")
        refused(send(credential), "revoked")

    def test_expired(self) -> None:
        credential = make_hmac(expires_at=timezone.now() - datetime.timedelta(seconds=1))
        refused(send(credential), "expired")

    def test_ip_allowlist(self) -> None:
        response = send(make_hmac(allowed_networks=["203.0.113.0/24"]))
        assert response.status_code == 403 and response.json()["code"] == "ip_not_allowed"

    def test_rotation_keeps_both_secrets_for_the_grace_period(self) -> None:
        obj, old = make_hmac()
        assert send((obj, old)).status_code == 200
        new = HMACCredential.objects.rotate_secret(
            HMACCredential.objects.get(pk=obj.pk), datetime.timedelta(hours=1)
        )
        assert new != old
        assert send((obj, new)).status_code == 200
        assert send((obj, old)).status_code == 200
        HMACCredential.objects.filter(pk=obj.pk).update(
            previous_secret_expires_at=timezone.now() - datetime.timedelta(seconds=1)
        )
        from apiauth.cache import invalidate

        invalidate([obj.lineage_id])
        refused(send((obj, old)), "signature_mismatch")
        assert send((obj, new)).status_code == 200


class TestPresignedUrls:
    def presign(self, credential: tuple[HMACCredential, str], path: str, **kwargs: Any) -> str:
        obj, secret = credential
        url = sigv4.Signer(obj.access_key_id, secret).presign(f"http://{HOST}{path}", **kwargs)
        return url.removeprefix(f"http://{HOST}")

    def test_presigned_get(self) -> None:
        credential = make_hmac()
        path = self.presign(credential, "/v1/orders?page=2", expires=60)
        response = Client().get(path, headers={"Host": HOST})
        assert response.status_code == 200, response.content
        # Credentials in the query: no shared cache keeps the response (nor the refusal).
        assert response["Cache-Control"] == "no-store"
        assert Client().get(path, headers={"Host": HOST}).status_code == 200
        tampered = path.replace("page=2", "page=3")
        assert Client().get(tampered, headers={"Host": HOST})["Cache-Control"] == "no-store"

    def test_expired_link(self) -> None:
        credential = make_hmac()
        when = timezone.now() - datetime.timedelta(seconds=120)
        path = self.presign(credential, "/v1/ping", expires=60, when=when)
        refused(Client().get(path, headers={"Host": HOST}), "signature_expired")

    def test_expiry_beyond_the_maximum(self) -> None:
        path = self.presign(make_hmac(), "/v1/ping", expires=3601)
        refused(Client().get(path, headers={"Host": HOST}), "expires_out_of_range")

    def test_tampered_query(self) -> None:
        path = self.presign(make_hmac(), "/v1/orders?page=2")
        refused(
            Client().get(path.replace("page=2", "page=3"), headers={"Host": HOST}),
            "signature_mismatch",
        )

    def test_head_too(self) -> None:
        path = self.presign(make_hmac(), "/v1/ping", method="HEAD")
        assert Client().head(path, headers={"Host": HOST}).status_code == 200

    @pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
    def test_refused_for_every_other_method(self, method: str) -> None:
        path = self.presign(make_hmac(), "/v1/orders", method=method)
        response = Client().generic(method, path, headers={"Host": HOST})
        refused(response, "presigned_method")

    def test_only_for_get(self, caplog: Any) -> None:
        obj, _secret = credential = make_hmac()
        path = self.presign(credential, "/v1/orders", method="POST")
        response = Client().post(
            path, ORDER, content_type="application/json", headers={"Host": HOST}
        )
        refused(response, "presigned_method")
        assert audited(caplog) == [("presigned_method", "hmac", obj.access_key_id)]


class TestBadInput:
    @pytest.mark.parametrize(
        "value",
        [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 ",
            "AWS4-HMAC-SHA256 Credential=a/b/c/d/e",
            "AWS4-HMAC-SHA256 Credential=AK/20200101/global/apiauth/aws4_request, "
            "SignedHeaders=host, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=AK/20200101/global/apiauth/aws4_request, "
            "SignedHeaders=Host;X-Amz-Date, Signature=" + "0" * 64,
            "AWS4-HMAC-SHA256 Credential=AK/20200101/global/apiauth/aws4_request, "
            "SignedHeaders=x-amz-date;host, Signature=" + "0" * 64,
            "AWS4-HMAC-SHA256 Credential=AK/20200101/global/apiauth/aws4_request, "
            "Credential=AK/20200101/global/apiauth/aws4_request, Signature=" + "0" * 64,
            "AWS4-HMAC-SHA256 Credential=A\u00e9K/20200101/global/apiauth/aws4_request",
            "AWS4-HMAC-SHA256 \x00\x01\x02",
        ],
    )
    def test_malformed_authorization(self, value: str) -> None:
        response = Client().get(
            "/v1/ping",
            HTTP_AUTHORIZATION=value.encode("utf-8").decode("latin-1"),
            HTTP_X_AMZ_DATE=sigv4.format_date(timezone.now()),
            HTTP_HOST=HOST,
        )
        assert response.status_code == 401, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"].startswith("malformed")

    @pytest.mark.parametrize(
        "date", ["", "2020-01-01T00:00:00Z", "20201301T000000Z", "20200101T000000", "x" * 500]
    )
    def test_malformed_date(self, date: str) -> None:
        refused(send(make_hmac(), tamper=set_header("X-Amz-Date", date)), "malformed_date")

    def test_non_utf8_signed_header(self) -> None:
        obj, secret = credential = make_hmac()
        response = send(credential, headers={"X-Custom": "caf\xe9"})
        # Latin-1 text on the wire is not UTF-8: refused cleanly, never a 500.
        assert response.status_code == 401

    def test_garbage_presigned_query(self) -> None:
        response = Client().get(
            "/v1/ping?X-Amz-Credential=%ff%fe&X-Amz-Signature=1&X-Amz-Expires=-1",
            headers={"Host": HOST},
        )
        refused(response, "malformed_query")


class TestAtRest:
    def test_a_database_dump_holds_no_secret(self) -> None:
        obj, secret = make_hmac()
        out = io.StringIO()
        call_command("dumpdata", "apiauth", stdout=out)
        assert secret not in out.getvalue()
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM apiauth_hmaccredential")
            rows = json.dumps(cursor.fetchall(), default=str)
        assert secret not in rows and obj.access_key_id in rows

    def test_redis_holds_no_secret(self, _redis: RedisServer) -> None:
        obj, secret = credential = make_hmac()
        assert send(credential, "POST", "/v1/orders", ORDER).status_code == 201
        client = _redis.client()
        for key in client.keys("*"):
            assert secret.encode() not in key
            if client.type(key) == b"string":
                value = client.get(key)
                assert isinstance(value, bytes) and secret.encode() not in value


class TestReviewFindings:
    """Found by an outside review of the verifier; each was accepted or a 500 before."""

    FAR = datetime.datetime(9999, 12, 31, 23, 59, 59, tzinfo=datetime.UTC)

    def test_a_date_in_the_year_9999_is_refused_not_a_500(self) -> None:
        refused(send(make_hmac(), when=self.FAR), "signature_not_yet_valid")
        obj, secret = make_hmac()
        url = sigv4.Signer(obj.access_key_id, secret).presign(
            f"http://{HOST}/v1/ping", expires=1, when=self.FAR
        )
        refused(
            Client().get(url.split(HOST, 1)[1], headers={"Host": HOST}), "signature_not_yet_valid"
        )

    def test_a_second_spelling_of_content_type_is_refused(self) -> None:
        def swap(request: dict[str, Any]) -> None:
            request["headers"]["Content-Type"] = "text/plain"  # what Django parses with
            request["extra"]["HTTP_CONTENT_TYPE"] = "application/json"  # "Content_Type:"

        refused(send(make_hmac(), "POST", "/v1/orders", ORDER, tamper=swap), "malformed_header")

    def test_repeated_parameters_cannot_be_reordered(self) -> None:
        credential = make_hmac()
        assert send(credential, path="/v1/whoami?id=1&id=2").status_code == 200
        reorder = lambda r: r.__setitem__("path", "/v1/whoami?id=2&id=1")  # noqa: E731
        response = send(credential, path="/v1/whoami?id=1&id=2", tamper=reorder)
        refused(response, "malformed_query")
        detail = "Send a repeated query parameter's values in sorted order."
        assert response.json()["detail"] == detail


class TestWirePath:
    """The path SigV4 signs is the one the client sent, still percent-encoded, from whichever
    server ran the app; re-encoding the decoded path is only the last resort."""

    def path(self, uri: str | None = None, *, scope: Any = None, **meta: str) -> bytes:
        from django.test import AsyncRequestFactory, RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import wire_path

        # An ASGI request where a scope is given, as only ASGI requests have one.
        django_request: Any
        if scope is None:
            django_request = RequestFactory().get("/ignored")
        else:
            django_request = AsyncRequestFactory().get("/ignored")
            django_request.scope = scope
        django_request.META.update(meta)
        if uri is not None:
            django_request.META["RAW_URI"] = uri
        return wire_path(Request(django_request))

    def test_gunicorn_raw_uri(self) -> None:
        assert self.path("/v1/a%2Fb%7E?x=1?y") == b"/v1/a%2Fb%7E"
        assert self.path("?x=1") == b"/"

    def test_uwsgi_request_uri(self) -> None:
        assert self.path(REQUEST_URI="/v1/a%2Fb%7E?x=1") == b"/v1/a%2Fb%7E"

    def test_absolute_form(self) -> None:
        assert self.path("https://example.com/v1/p%7E?x") == b"/v1/p%7E"
        assert self.path("http://example.com") == b"/"
        # "://" further in is a path like any other.
        assert self.path("/abcde://x#y") == b"/abcde://x#y"

    def test_asgi_raw_path(self) -> None:
        assert self.path(scope={"raw_path": b"/v1/%7E"}) == b"/v1/%7E"
        assert self.path(scope={"raw_path": b""}) == b"/"
        assert self.path(scope={"raw_path": "/v1/not-bytes"}) == b"/ignored"

    def test_the_query_as_sent(self) -> None:
        from django.test import AsyncRequestFactory, RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import wire_query

        request = RequestFactory().get("/", QUERY_STRING="q=\xe2\x82\xac")  # WSGI: latin-1
        assert wire_query(Request(request)) == b"q=\xe2\x82\xac"
        request.scope = {"query_string": b"q=\xe2\x82\xac&r"}  # type: ignore[attr-defined]
        assert wire_query(Request(request)) == b"q=\xe2\x82\xac", "WSGI has no scope"
        del request.META["QUERY_STRING"]
        assert wire_query(Request(request)) == b""
        asgi = AsyncRequestFactory().get("/", QUERY_STRING="q=%E2%82%AC")
        asgi.scope = {"query_string": b"q=\xe2\x82\xac&r"}
        assert wire_query(Request(asgi)) == b"q=\xe2\x82\xac&r"
        del asgi.scope
        assert wire_query(Request(asgi)) == b"q=%E2%82%AC", "no scope: the query as decoded"

    @pytest.mark.parametrize("query", ["q=\u20ac", "q=%E2%82%AC", "q=\xe9&r=1"])
    def test_under_asgi(self, query: str) -> None:
        """Django hands an ASGI query string on decoded as UTF-8, where WSGI's is latin-1:
        the bytes signed are the scope's."""
        from asgiref.sync import async_to_sync
        from django.test import AsyncClient

        obj, secret = make_hmac()
        signer = sigv4.Signer(obj.access_key_id, secret)
        headers = signer.sign("GET", f"http://{HOST}/v1/ping?{query}", {"Host": HOST}, b"")
        get = async_to_sync(AsyncClient().get)  # it sends Host itself
        response = get("/v1/ping", QUERY_STRING=query.encode(), headers=headers)
        assert response.status_code == 200, response.content

    def test_otherwise_the_decoded_path_encoded_again(self) -> None:
        from django.test import RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import wire_path

        # WSGI hands the path over as latin-1 text.
        assert self.path(SCRIPT_NAME="/app", PATH_INFO="/v1/\xc3\xa9~ x") == b"/app/v1/%C3%A9~%20x"
        request = RequestFactory().get("/ignored")
        del request.META["SCRIPT_NAME"], request.META["PATH_INFO"]
        assert wire_path(Request(request)) == b"/"


class TestRefusedOnceTheKeyIsRead:
    """Refusals of the request itself, after its access key id is read: each with its code
    and words, audited with that id."""

    @pytest.mark.parametrize(
        ("case", "code", "detail"),
        [
            ("dot_segment", "non_canonical_path", DETAILS["non_canonical_path"]),
            ("two_spellings", "malformed_header", "A header is sent under two spellings."),
            ("two_lengths", "malformed_header", "A header is sent under two spellings."),
            ("not_utf8", "malformed_header", "A header is not UTF-8."),
            (
                "unsorted_values",
                "malformed_query",
                "Send a repeated query parameter's values in sorted order.",
            ),
        ],
    )
    def test_refusal(self, caplog: Any, case: str, code: str, detail: str) -> None:
        obj, _secret = credential = make_hmac()
        path, headers, tamper = "/v1/ping", None, None
        if case == "dot_segment":
            path = "/v1/./ping"

            def tamper(request: dict[str, Any]) -> None:
                request["path"], request["extra"]["RAW_URI"] = "/v1/ping", "/v1/./ping"

        elif case == "two_spellings":

            def tamper(request: dict[str, Any]) -> None:
                request["extra"]["HTTP_CONTENT_TYPE"] = "text/plain"  # "Content_Type:"

        elif case == "two_lengths":

            def tamper(request: dict[str, Any]) -> None:
                request["extra"]["HTTP_CONTENT_LENGTH"] = "0"  # "Content_Length:"

        elif case == "not_utf8":
            headers = {"X-Custom": "caf\xe9"}
        else:
            path = "/v1/ping?a=2&a=1"
        response = send(credential, path=path, headers=headers, tamper=tamper)
        refused(response, code)
        assert response.json()["detail"] == detail
        assert audited(caplog) == [(code, "hmac", obj.access_key_id)]

    def test_a_signed_header_too_large(self, caplog: Any) -> None:
        obj, _secret = credential = make_hmac()
        limit = 600  # above the Authorization header's length
        with override_settings(APIAUTH=settings_with(HMAC={"MAX_HEADER_SIZE": limit})):
            assert send(credential, headers={"X-Amz-Meta": "m" * limit}).status_code == 200
            response = send(credential, headers={"X-Amz-Meta": "m" * (limit + 1)})
        refused(response, "malformed_header")
        assert response.json()["detail"] == "A signed header is too large."
        assert audited(caplog) == [("malformed_header", "hmac", obj.access_key_id)]

    def test_size_limits_are_inclusive(self) -> None:
        """An ``Authorization`` header or a query of exactly the limit (the query may be four
        times ``MAX_HEADER_SIZE``) is accepted."""
        credential = make_hmac()
        response = send(credential)
        authorization = response.wsgi_request.META["HTTP_AUTHORIZATION"]
        limit = len(authorization)
        with override_settings(APIAUTH=settings_with(HMAC={"MAX_HEADER_SIZE": limit})):
            assert send(credential).status_code == 200
            query = "q=" + "x" * (4 * limit - 2)
            assert send(credential, path=f"/v1/ping?{query}").status_code == 200
            response = send(credential, path=f"/v1/ping?{query}x")
        refused(response, "malformed")

    @pytest.mark.parametrize("param", ["X-Amz-Signature", "X-Amz-Credential"])
    def test_either_presigned_parameter_claims_the_request(self, param: str) -> None:
        """A URL with only one of them is a presigned URL gone wrong, not an unsigned
        request: refused as such, never handed on to the next authentication class."""
        response = Client().get(f"/v1/ping?{param}=x", headers={"Host": HOST})
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("AWS4-HMAC-SHA256 realm=")
        assert response.json()["code"].startswith("malformed")


class TestHeadersCollected:
    def test_empty_body_headers_are_none_sent(self) -> None:
        """WSGI servers set ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` empty when the client
        sent neither, wherever they come in the environ: not headers, and the rest are read."""
        from django.test import RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import request_headers

        request = Request(RequestFactory().get("/"))
        request._request.META = {
            "CONTENT_TYPE": "",
            "CONTENT_LENGTH": "",
            "HTTP_HOST": "h",
            "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 …",
            "HTTP_X_AMZ_DATE": "20261204T000000Z",
        }
        presented = sigv4.Presented(
            credential=sigv4.Credential("AK", "20261204", "global", "apiauth"),
            signed_headers=("content-length", "host", "x-amz-date"),
            signature="0" * 64,
            amz_date="20261204T000000Z",
        )
        assert request_headers(request, presented, sigv4.AWS) == {
            "host": ["h"],
            "x-amz-date": ["20261204T000000Z"],
        }

    def test_header_names_are_remembered_within_a_bound(self) -> None:
        """Clients choose header names: the memo of META keys read as headers stays small,
        and reads each key as it would unremembered."""
        from apiauth.authentication import signed_request

        signed_request._header_names.clear()
        assert signed_request.header_name("HTTP_X_AMZ_DATE") == "x-amz-date"
        assert signed_request.header_name("CONTENT_TYPE") == "content-type"
        assert signed_request.header_name("CONTENT_LENGTH") == "content-length"
        assert signed_request.header_name("REMOTE_ADDR") == ""
        assert signed_request.header_name("HTTP_X_AMZ_DATE") == "x-amz-date"  # remembered
        for i in range(3000):
            assert signed_request.header_name(f"HTTP_X_{i}") == f"x-{i}"
            assert len(signed_request._header_names) <= 1024
        assert signed_request.meta_name("x-amz-content-sha256") == "HTTP_X_AMZ_CONTENT_SHA256"

    def test_where_headers_are_is_remembered_per_set_of_names(self) -> None:
        """Which ``META`` entries hold the headers is worked out once per set of names (and
        signed headers): a request with one more name is read afresh, values are read from
        each request, and the memo stays small."""
        from django.test import RequestFactory
        from rest_framework.request import Request

        from apiauth.authentication import request_headers, signed_request

        def read(**meta: str) -> dict[str, list[str]]:
            request = Request(RequestFactory().get("/"))
            request._request.META = {"REMOTE_ADDR": "127.0.0.1", **meta}
            presented = sigv4.Presented(
                credential=sigv4.Credential("AK", "20261204", "global", "apiauth"),
                signed_headers=("host", "x-amz-date"),
                signature="0" * 64,
                amz_date="20261204T000000Z",
            )
            return request_headers(request, presented, sigv4.AWS)

        signed_request._layouts.clear()
        base = {"HTTP_HOST": "h", "HTTP_X_AMZ_DATE": "d1", "HTTP_ACCEPT": "*/*"}
        assert read(**base) == {"host": ["h"], "x-amz-date": ["d1"]}
        assert read(**{**base, "HTTP_X_AMZ_DATE": "d2"}) == {"host": ["h"], "x-amz-date": ["d2"]}
        assert len(signed_request._layouts) == 1
        assert read(**base, HTTP_X_AMZ_TARGET="t")["x-amz-target"] == ["t"]
        assert len(signed_request._layouts) == 2
        for i in range(1100):
            read(**base, **{f"HTTP_X_{i}": "v"})
            assert len(signed_request._layouts) <= 1024
        # Names by the hundred, or long ones, are read but never kept.
        signed_request._layouts.clear()
        many = {f"HTTP_X_{i}": "v" for i in range(200)}
        assert read(**base, **many)["host"] == ["h"]
        assert read(**base, **{"HTTP_X_" + "A" * 3000: "v"})["x-amz-date"] == ["d1"]
        assert signed_request._layouts == {}

    def test_a_signed_content_length(self) -> None:
        headers = {"Content-Length": str(len(ORDER))}
        response = send(make_hmac(), "POST", "/v1/orders", ORDER, headers=headers)
        assert response.status_code == 201, response.content

    def test_a_value_repeated_as_is(self) -> None:
        """Equal values are in order (only a reordering is refused)."""
        assert send(make_hmac(), path="/v1/ping?a=1&a=1").status_code == 200
