from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apiauth.conf import conf
from apiauth.throttling import headers
from apiauth.throttling.limiter import RESULT_ATTR

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


class SecurityHeadersMiddleware:
    """Request ids and defensive headers on every response.

    * ``X-Request-Id``: a well-formed incoming id is kept (so traces join up across proxies),
      anything else is replaced by a new UUID; ``request.request_id`` holds it.
    * ``X-Content-Type-Options``, ``X-Frame-Options``, ``Referrer-Policy``.
    * ``Cache-Control: no-store`` on responses to requests that carried credentials, so no
      shared cache keeps one client's data for another.
    """

    credential_headers = ("HTTP_AUTHORIZATION", "HTTP_COOKIE")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if REQUEST_ID_RE.fullmatch(incoming) else str(uuid.uuid4())
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-Id"] = request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if self.carries_credentials(request):
            response["Cache-Control"] = "no-store"
        return response

    def carries_credentials(self, request: HttpRequest) -> bool:
        meta = request.META
        if any(meta.get(name) for name in self.credential_headers) or meta.get(conf.key_meta_name):
            return True
        param = conf.KEY_QUERY_PARAM
        if param and param in request.GET:
            return True
        # A presigned URL carries its signature in the query (docs/hmac.md).
        signature = f"{conf.hmac.header_prefix}Signature="
        return signature in str(meta.get("QUERY_STRING", ""))


class RateLimitHeadersMiddleware:
    """Rate-limit headers on every response whose request went through a limiter.

    The throttle and the failed-authentication limiter leave their decision on the request; the
    headers are written here so 401, 403 and 429 responses, rendered by the exception handler,
    carry them as well as 200s.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        outcome = getattr(request, RESULT_ATTR, None)
        if outcome is not None and outcome.decision is not None:
            headers.apply(response, outcome.decision)
        return response
