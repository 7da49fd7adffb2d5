"""The DRF floor's view: DRF's own classes doing one indexed lookup and one EVALSHA."""

from __future__ import annotations

from typing import Any

from django.urls import path
from django_redis import get_redis_connection
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from bench.sites.floor_urls import BUCKET, INTERVAL_US, SHA, SPAN_US, find_key


class KeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        row = find_key(request.META.get("HTTP_X_API_KEY", ""))
        if row is None:
            raise exceptions.AuthenticationFailed("invalid key")
        return None, row

    def authenticate_header(self, request: Request) -> str:
        return 'Api-Key realm="api"'


class BucketThrottle(BaseThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        row: Any = request.auth
        lineage = row[1]
        client = get_redis_connection("default")
        try:
            return bool(client.evalsha(SHA, 1, f"drf-floor:{lineage}", INTERVAL_US, SPAN_US))
        except Exception:  # NoScriptError after a restart: load it once.
            return bool(client.eval(BUCKET, 1, f"drf-floor:{lineage}", INTERVAL_US, SPAN_US))


class PingView(APIView):
    authentication_classes = [KeyAuthentication]
    throttle_classes = [BucketThrottle]

    def get(self, request: Request) -> Response:
        row: Any = request.auth
        return Response({"kind": "api_key", "id": row[0]})


urlpatterns = [path("v1/ping", PingView.as_view())]
