"""The demo's ``/v1/ping`` taken apart, one step per view, under the demo's own settings: what a
bare DRF view costs, what one ``EVALSHA`` adds, what the least DRF stack without a query costs,
what the DRF floor's lookup adds, and what each of our classes adds (``python -m bench
breakdown``).

Every step answers at ``/v1/ping`` itself, each from a URLconf of its own that
:class:`StepURLconf` picks, so CORS and every path rule treat the steps alike; ``ours`` is
resolved through the demo's URLconf, as in production (a few µs more than a one-route
URLconf)."""

from __future__ import annotations

import hashlib
import types
from collections.abc import Callable
from typing import Any, ClassVar

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django_redis import get_redis_connection
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiauth.authentication import APIKeyAuthentication
from apiauth.permissions import HasScopes
from apiauth.store import get_store
from apiauth.store.redis import RedisStore
from apiauth.throttling import TokenBucketThrottle
from bench.sites import drf_floor_urls as drf_floor
from bench.sites.floor_urls import BUCKET, INTERVAL_US, SHA, SPAN_US, find_key


class BareView(APIView):
    """DRF with nothing to do: no authentication, permission or throttle."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []

    def get(self, request: Request) -> Response:
        return Response({"kind": "api_key", "id": "bare"})


class RoundTripView(BareView):
    """The bare view and the DRF floor's one ``EVALSHA``, through django-redis: a bucket per
    key, as the floor's, so every request is admitted and writes."""

    def get(self, request: Request) -> Response:
        bucket = "breakdown:" + request.META.get("HTTP_X_API_KEY", "")[-12:]
        client = get_redis_connection("default")
        try:
            client.evalsha(SHA, 1, bucket, INTERVAL_US, SPAN_US)
        except Exception:  # NoScriptError after a restart: load it once.
            client.eval(BUCKET, 1, bucket, INTERVAL_US, SPAN_US)
        return super().get(request)


class OwnTripView(BareView):
    """The bare view and the same ``EVALSHA`` on the connection apiauth's store keeps per
    thread (no pool to check out of): the cheapest round trip we know, and so the bound."""

    def get(self, request: Request) -> Response:
        own_trip("breakdown:own:" + request.META.get("HTTP_X_API_KEY", "")[-12:])
        return super().get(request)


def own_trip(bucket: str) -> bool:
    """The floor's ``EVALSHA`` on apiauth's thread connection: admitted or not."""
    store = get_store()
    assert isinstance(store, RedisStore)  # the demo's store
    # The store's script runner: EVALSHA, and EVAL once after a restart.
    return bool(store._script(SHA, BUCKET, [bucket], [INTERVAL_US, SPAN_US]))


class FloorView(drf_floor.PingView):
    """The DRF floor's view as its own site serves it: DRF's defaults, not the demo's
    permissions, content negotiation and parsers."""

    permission_classes = []
    content_negotiation_class = DefaultContentNegotiation
    parser_classes = [JSONParser, FormParser, MultiPartParser]


class MemoryKeyAuthentication(drf_floor.KeyAuthentication):
    """The floor's authentication with the key found in this worker's memory: a dict of the
    digests seen, each filled by the floor's one query, and nothing checked after that."""

    rows: ClassVar[dict[str, tuple[str, str]]] = {}

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = request._request.META.get("HTTP_X_API_KEY", "")
        digest = hashlib.sha256(raw.encode()).hexdigest()
        row = self.rows.get(digest)
        if row is None:
            row = find_key(raw)
            if row is None:
                raise exceptions.AuthenticationFailed("invalid key")
            self.rows[digest] = row
        return None, row


class OwnTripThrottle(drf_floor.BucketThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        row: Any = request.auth
        return own_trip(f"breakdown:memory:{row[1]}")


class NoQueryFloorView(drf_floor.PingView):
    """The least a DRF API-key stack without a query per request can do: the DRF floor with
    the key found in a dict and its ``EVALSHA`` on apiauth's connection, under the demo's DRF
    settings as our steps are (apiauth's cached content negotiation, the demo's parsers). It
    checks nothing: what any design that keeps its keys in memory pays before doing anything."""

    permission_classes = []
    authentication_classes = [MemoryKeyAuthentication]
    throttle_classes = [OwnTripThrottle]


class KeyView(BareView):
    """Our API key alone: the worker's copy, confirmed in Redis (no throttle to ride in)."""

    authentication_classes = [APIKeyAuthentication]


class ThrottledView(KeyView):
    """The key and ``TokenBucketThrottle``: the demo's plan (a bucket and a quota) and the
    copy's confirmation in one trip, the rate-limit headers; the bare view's answer."""

    throttle_classes = [TokenBucketThrottle]


class ScopedView(ThrottledView):
    """... and ``HasScopes``, ``IsAuthenticated``: the demo's classes, on the bare view."""

    permission_classes = [HasScopes, IsAuthenticated]


def _urlconf(view: type[APIView]) -> types.ModuleType:
    module = types.ModuleType(f"breakdown.{view.__name__}")
    module.__dict__["urlpatterns"] = [path("v1/ping", view.as_view())]
    return module


URLCONFS: dict[str, types.ModuleType | str] = {
    "bare": _urlconf(BareView),
    "round trip": _urlconf(RoundTripView),
    "own trip": _urlconf(OwnTripView),
    "no-query floor": _urlconf(NoQueryFloorView),
    "DRF floor": _urlconf(FloorView),
    "key": _urlconf(KeyView),
    "throttled": _urlconf(ThrottledView),
    "scoped": _urlconf(ScopedView),
    "ours": "project.urls",
}
STEP_KEY = "bench.step"
"""The WSGI environ key naming a request's step."""


class StepURLconf:
    """First in the middleware: the URLconf of the request's step."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.urlconf = URLCONFS[request.META[STEP_KEY]]  # type: ignore[assignment]
        return self.get_response(request)
