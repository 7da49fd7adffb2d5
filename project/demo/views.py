from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.generic import TemplateView
from drf_spectacular.utils import extend_schema
from rest_framework import generics
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from apiauth.credentials import get_credential
from apiauth.errors import method_not_allowed
from project.demo.models import Order
from project.demo.serializers import HealthSerializer, OrderSerializer, PingSerializer


class IndexView(TemplateView):
    template_name = "index.html"

    def http_method_not_allowed(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        allowed = [m.upper() for m in self.http_method_names if hasattr(self, m)]
        return method_not_allowed(request, allowed)


class HealthView(APIView):
    """For load balancers and uptime checks: never authenticated, never throttled."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(responses=HealthSerializer)
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class PingView(APIView):
    """Who is calling: the credential's kind and public id, never a secret."""

    @extend_schema(responses=PingSerializer)
    def get(self, request: Request) -> Response:
        credential = get_credential(request)
        return Response(
            {
                "kind": credential.kind,
                "id": credential.id,
                "scopes": sorted(credential.scopes),
                "plan": credential.plan,
                "owner": credential.owner.get_username() if credential.owner else None,
            }
        )


class OrderPagination(PageNumberPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


class OwnedOrderView(generics.GenericAPIView[Order]):
    """Orders of the calling credential's owner only: another owner's order is a 404, not a
    403, so ids cannot be probed."""

    serializer_class = OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        return Order.objects.filter(owner_ref=get_credential(self.request).owner_ref)


class OrderListView(OwnedOrderView, generics.ListCreateAPIView[Order]):
    pagination_class = OrderPagination
    throttle_scope = "orders"
    required_scopes = {"GET": ["orders:read"], "POST": ["orders:write"]}

    def perform_create(self, serializer: BaseSerializer[Order]) -> None:
        serializer.save(owner_ref=get_credential(self.request).owner_ref)


class OrderDetailView(OwnedOrderView, generics.RetrieveAPIView[Order]):
    required_scopes = ["orders:read"]
