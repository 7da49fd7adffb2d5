"""A URLconf for the view checks: a plain Django view and a DRF view, each declaring a cost
and scopes the checks judge."""

from __future__ import annotations

from django.http import HttpResponse
from django.urls import include, path
from django.views import View
from rest_framework.response import Response
from rest_framework.views import APIView


class PlainView(View):
    throttle_cost = 0
    required_scopes = ["plain:read"]

    def get(self, request: object) -> HttpResponse:  # pragma: no cover - never called
        return HttpResponse()


class RestView(APIView):
    throttle_cost = {"POST": 0}
    required_scopes = {"GET": ["rest:read"]}

    def get(self, request: object) -> Response:  # pragma: no cover - never called
        return Response()


urlpatterns = [
    path("plain", PlainView.as_view()),
    path("nested/", include([path("rest", RestView.as_view())])),
    path("function", lambda request: HttpResponse()),
]
