"""Sign requests to an apiauth-protected API from Python, without any AWS library.

::

    import requests
    from apiauth.client import RequestsAuth

    auth = RequestsAuth("HK3Q...", "secret")
    requests.post("https://api.example.com/v1/orders", json={...}, auth=auth)

    import httpx
    from apiauth.client import HTTPXAuth

    httpx.post("https://api.example.com/v1/orders", json={...}, auth=HTTPXAuth("HK3Q...", "secret"))

    from apiauth.client import presign_url

    presign_url("https://api.example.com/v1/report?month=2026-11", "HK3Q...", "secret", expires=600)

The canonicalization is the verifier's own (:mod:`apiauth.sigv4`). Neither ``requests`` nor
``httpx`` is imported here: the auth objects only use the request they are handed.
"""

from __future__ import annotations

import datetime
from typing import Any

from apiauth.sigv4 import AWS, Scheme, Signer

__all__ = ["HTTPXAuth", "RequestsAuth", "presign_url"]

# Headers an HTTP library, proxy or load balancer may add or rewrite after signing, and so
# left unsigned (botocore leaves out the same kind).
UNSIGNED_HEADERS = frozenset(
    {
        "accept",
        "accept-encoding",
        "authorization",
        "connection",
        "content-length",
        "expect",
        "keep-alive",
        "proxy-authorization",
        "te",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


class _SigV4:
    def __init__(
        self,
        access_key_id: str,
        secret: str,
        *,
        region: str = "global",
        service: str = "apiauth",
        scheme: Scheme = AWS,
    ) -> None:
        self.signer = Signer(access_key_id, secret, region, service, scheme)

    def headers(
        self, method: str, url: str, headers: Any, body: bytes, when: datetime.datetime | None
    ) -> dict[str, str]:
        signed = {k: v for k, v in headers.items() if k.lower() not in UNSIGNED_HEADERS}
        return self.signer.sign(method, url, signed, body, when=when)


class RequestsAuth(_SigV4):
    """``auth=`` for :mod:`requests`: signs the prepared request, body included."""

    def __call__(self, request: Any, when: datetime.datetime | None = None) -> Any:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        if not isinstance(body, bytes):
            raise TypeError("A streamed body cannot be signed: pass bytes (data= or json=).")
        added = self.headers(request.method, request.url, request.headers, body, when)
        request.headers.update(added)
        return request


class HTTPXAuth(_SigV4):
    """``auth=`` for :mod:`httpx` (a callable auth, which httpx accepts as is)."""

    def __call__(self, request: Any, when: datetime.datetime | None = None) -> Any:
        body = request.read()  # the whole body: a streamed one is read into memory first
        added = self.headers(request.method, str(request.url), request.headers, body, when)
        for name, value in added.items():
            request.headers[name] = value
        return request


def presign_url(
    url: str,
    access_key_id: str,
    secret: str,
    *,
    expires: int = 3600,
    method: str = "GET",
    region: str = "global",
    service: str = "apiauth",
    scheme: Scheme = AWS,
    when: datetime.datetime | None = None,
) -> str:
    """A link anyone holding it may GET until ``expires`` seconds from now (the server caps it
    at ``PRESIGNED_MAX_EXPIRES``). Only the host is signed besides the URL itself."""
    signer = Signer(access_key_id, secret, region, service, scheme)
    return signer.presign(url, expires, method=method, when=when)
