"""Requests signed with AWS Signature Version 4: the ``Authorization`` header or a presigned URL."""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.core.handlers.wsgi import LimitedStream, WSGIRequest
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request

from apiauth import sigv4
from apiauth.authentication.base import CredentialAuthentication, Refused
from apiauth.authentication.signed_request import (
    meta_name,
    repeated_in_order,
    request_headers,
    wire_path,
    wire_query,
)
from apiauth.cache import CredentialCache, hmac_cache
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.errors import PayloadTooLarge
from apiauth.models import HMACCredential
from apiauth.store.keys import replay_key

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def build_policy() -> sigv4.Policy:
    """The SigV4 policy ``APIAUTH["HMAC"]`` describes."""
    settings = conf.hmac
    return sigv4.Policy(
        scheme=sigv4.Scheme(
            algorithm=settings.algorithm,
            secret_prefix=settings.secret_prefix,
            header_prefix=settings.header_prefix,
        ),
        service=settings.service,
        regions=settings.regions,
        max_skew=settings.max_clock_skew,
        max_expires=settings.presigned_max_expires,
        allow_unsigned_payload=settings.allow_unsigned_payload,
        # A path that normalising would change is refused (get_signed_request): the
        # canonical URI is the path as sent, without normalising it a second time.
        normalize=False,
    )


def _announces_no_body(http: Any) -> bool:
    """Whether Django will read ``b""`` from this request without our reading it: a WSGI
    request whose stream is still Django's own, limited to no bytes (``Content-Length`` 0 or
    absent, chunked ones included). A stream a middleware replaced is read and hashed."""
    stream = http.__dict__.get("_stream")
    return (
        type(stream) is LimitedStream
        and stream.limit <= 0
        and "_body" not in http.__dict__
        and isinstance(http, WSGIRequest)
    )


class HMACAuthentication(CredentialAuthentication[sigv4.Presented]):
    """Requests signed with AWS Signature Version 4 (``Authorization`` header or presigned URL).

    The scheme's names, service, regions and limits come from ``APIAUTH["HMAC"]``. Cheap
    checks run first (shape, scope, clock, signed headers), then the credential lookup (the
    worker's copy, secrets already decrypted), the body hash, the signature, the credential's
    lifecycle and network, and last the replay check of unsafe methods.
    """

    kind = "hmac"
    cache: CredentialCache[HMACCredential] = hmac_cache
    """The worker's copies of the credentials, secrets decrypted, by access key id."""

    @property
    def keyword(self) -> str:  # type: ignore[override]
        return conf.hmac.algorithm

    def get_policy(self) -> sigv4.Policy:
        """The scheme's rules, built from ``APIAUTH["HMAC"]`` once per settings change."""
        return conf.derive(build_policy)

    def fail(
        self, request: Request, code: str, detail: str, credential_id: str | None = None
    ) -> exceptions.APIException:
        exc = super().fail(request, code, detail, credential_id)
        # The server's clock, so a client refused for skew can correct its own.
        exc.extra_headers = {"Date": http_date()}  # type: ignore[attr-defined]
        return exc

    def claim(self, request: Request) -> sigv4.Presented | None:
        return self.get_presented(request, self.get_policy())

    def authenticate_claim(
        self, request: Request, claim: sigv4.Presented
    ) -> tuple[Any, Credential]:
        policy = self.get_policy()
        presented = claim
        akid = presented.credential.access_key_id
        signed = self.get_signed_request(request, policy, presented)
        try:
            payload_hash = policy.check(presented, signed, timezone.now())
        except sigv4.SignatureError as exc:
            raise Refused(exc.code, exc.detail, akid) from None
        entry = self.cached(request, self.cache, akid)
        if entry is None:
            raise Refused("unknown_access_key", _("Unknown access key id."), akid)
        _canonical, to_sign = policy.string_to_sign(presented, signed, payload_hash)
        if not self.signature_matches(policy, presented, to_sign, entry.obj):
            # The copy may predate a rotation: the database decides before a refusal.
            entry = self.cache.fill(akid) if entry.check is not None else None
            if entry is None or not self.signature_matches(policy, presented, to_sign, entry.obj):
                detail = _("The signature does not match the request.")
                raise Refused("signature_mismatch", detail, akid)
        replay, ttl_ms = self.replay_claim(request, policy, presented, entry.obj)
        return self.accept(request, entry, akid, claim=replay, claim_ttl_ms=ttl_ms)

    def get_presented(self, request: Request, policy: sigv4.Policy) -> sigv4.Presented | None:
        # Django's request, not DRF's: every attribute DRF hands on costs a caught exception.
        http = request._request
        meta = http.META
        authorization = meta.get("HTTP_AUTHORIZATION")
        query = meta.get("QUERY_STRING", "")
        scheme = policy.scheme
        ours = authorization is not None and authorization.partition(" ")[0] == scheme.algorithm
        if (
            not ours
            and scheme.signature_param not in query
            and scheme.credential_param not in query
        ):
            return None
        limit = conf.hmac.max_header_size
        try:
            if len(authorization or "") > limit or len(query) > 4 * limit:
                raise sigv4.SignatureError("malformed", _("The signature is too large."))
            amz_date = meta.get(meta_name(scheme.date_header))
            presented = policy.presented(
                authorization if ours else None, amz_date, sigv4.parse_query(wire_query(request))
            )
        except sigv4.SignatureError as exc:
            raise Refused(exc.code, exc.detail) from None
        if presented is not None and presented.presigned and http.method not in ("GET", "HEAD"):
            raise Refused(
                "presigned_method",
                _("Presigned URLs are for GET and HEAD requests."),
                presented.credential.access_key_id,
            )
        return presented

    def get_signed_request(
        self, request: Request, policy: sigv4.Policy, presented: sigv4.Presented
    ) -> sigv4.SignedRequest:
        akid = presented.credential.access_key_id
        path = wire_path(request)
        if not sigv4.is_normal_path(path):
            # The signature would cover the normalised path while Django routes this one.
            raise Refused(
                "non_canonical_path",
                _("Paths with '.', '..' or empty segments cannot be signed."),
                akid,
            )
        try:
            headers = request_headers(request, presented, policy.scheme)
        except sigv4.SignatureError as exc:
            raise Refused(exc.code, exc.detail, akid) from None
        except UnicodeError:
            detail = _("A header is not UTF-8.")
            raise Refused("malformed_header", detail, akid) from None
        if not repeated_in_order(presented.query):
            detail = _("Send a repeated query parameter's values in sorted order.")
            raise Refused("malformed_query", detail, akid)
        limit = conf.hmac.max_header_size
        for values in headers.values():
            for value in values:
                if len(value) > limit:
                    raise Refused("malformed_header", _("A signed header is too large."), akid)
        return sigv4.SignedRequest(
            method=request._request.method or "GET",
            path=path,
            headers=headers,
            body_sha256=self.body_sha256(request),
        )

    def body_sha256(self, request: Request) -> str:
        """SHA-256 of the body as received: computed here, never taken from the client."""
        http = request._request
        try:
            length = int(http.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            # Django would raise reading the body (a 500): the request is malformed (RFC 9110
            # §8.6). Servers that parse HTTP themselves refuse it before it gets here.
            detail = _("The Content-Length header is not a number.")
            raise exceptions.ParseError(detail, code="malformed_content_length") from None
        if _announces_no_body(http):
            return sigv4.EMPTY_SHA256
        max_size = conf.hmac.max_body_size
        if length > max_size:
            raise PayloadTooLarge()
        try:
            body = http.body
        except RequestDataTooBig:
            raise PayloadTooLarge() from None
        if len(body) > max_size:
            raise PayloadTooLarge()
        return hashlib.sha256(body).hexdigest()

    def signature_matches(
        self,
        policy: sigv4.Policy,
        presented: sigv4.Presented,
        to_sign: str,
        obj: HMACCredential,
    ) -> bool:
        credential = presented.credential
        keys = obj.signing_keys(
            policy.scheme, credential.date, credential.region, credential.service
        )
        # Each key is tried, even after a match: the time taken does not say which one matched.
        matched = [policy.matches(presented, to_sign, key) for key in keys]
        return any(matched)

    def replay_claim(
        self,
        request: Request,
        policy: sigv4.Policy,
        presented: sigv4.Presented,
        obj: HMACCredential,
    ) -> tuple[str, int]:
        """An unsafe request's claim: its signature is accepted once (the claim is kept twice
        the clock window, after which the date check refuses it anyway). Safe methods may be
        retried: ``("", 0)``. :meth:`claim_once` makes it."""
        if request._request.method in SAFE_METHODS or not conf.hmac.replay_protection:
            return "", 0
        # The stored id, not the one sent: under a case-insensitive collation one signature
        # must not be claimable under two spellings of the id.
        key = replay_key(str(obj.lineage_id), obj.access_key_id, presented.signature)
        return key, 2 * policy.max_skew * 1000

    def replayed_refusal(self, credential: Credential) -> Refused:
        return Refused(
            "replayed",
            _("This signed request was already received; sign each request anew."),
            credential.id,
        )
