"""The smallest API that exercises every part of apiauth, for the library's own tests."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apiauth.credentials import get_credential


class HealthView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class PingView(APIView):
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


class WhoAmIView(APIView):
    """Authenticated but never throttled: a cached credential is confirmed by the
    authentication class itself."""

    throttle_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        request.user.touched_by_view = True  # type: ignore[union-attr]
        credential = get_credential(request)
        return Response(
            {
                "id": credential.id,
                "user": str(request.user),
                "owner_is_user": credential.owner is request.user,
            }
        )

    def post(self, request: Request) -> Response:
        return self.get(request)


class OrderSerializer(serializers.Serializer[dict[str, Any]]):
    sku = serializers.RegexField(r"^[A-Za-z0-9-]{3,64}\Z", max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=100)


class OrderListView(APIView):
    """Scopes per method, a scope rate and the unsafe-method cost, with no database."""

    throttle_scope = "orders"
    required_scopes = {"GET": ["orders:read"], "POST": ["orders:write"]}

    def get(self, request: Request) -> Response:
        return Response({"results": []})

    def post(self, request: Request) -> Response:
        serializer = OrderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data, status=status.HTTP_201_CREATED)


class CrashView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug in a view")


class RelayView(APIView):
    """Hands its request on to another view, which authenticates it again (as a view that
    calls another does)."""

    throttle_classes: list[Any] = []
    to = {"whoami": WhoAmIView, "orders": OrderListView}

    def post(self, request: Request, to: str) -> Any:
        return self.to[to].as_view()(request._request)


class ThrottledRelayView(RelayView):
    throttle_classes = list(APIView.throttle_classes)
