from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView
from rest_framework_api_key.permissions import HasAPIKey, KeyParser


class KeyThrottle(ScopedRateThrottle):
    """ScopedRateThrottle per API key (its public prefix) instead of per address."""

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        key = KeyParser().get(request)
        prefix = key.partition(".")[0] if key else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": prefix}


class PingView(APIView):
    permission_classes = [HasAPIKey]
    throttle_classes = [KeyThrottle]
    throttle_scope = "ping"

    def get(self, request: Request) -> Response:
        key = KeyParser().get(request) or ""
        return Response({"kind": "api_key", "id": key.partition(".")[0]})


urlpatterns = [path("v1/ping", PingView.as_view())]
