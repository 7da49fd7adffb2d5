"""The demo API: scopes, ownership, strict input and problem+json errors over HTTP."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from project.demo.models import Order
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db

ORDERS = "/v1/orders"


def client_for(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=raw)
    return client


@pytest.fixture
def writer() -> APIClient:
    return client_for(make_key(owner=make_user("writer"))[1])


def post_json(client: APIClient, data: Any) -> Any:
    return client.post(ORDERS, data=json.dumps(data), content_type="application/json")


class TestPublic:
    def test_health_needs_no_credentials(self) -> None:
        response = APIClient().get("/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_unknown_url_is_problem_json(self) -> None:
        response = APIClient().get("/nope")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"

    def test_index_page(self) -> None:
        page = APIClient().get("/").content.decode()
        assert "apiauth demo" in page
        # A command that works as printed from the checkout (not a bare `python manage.py`,
        # which needs the venv and SECRET_KEY).
        assert 'make manage ARGS="apiauth_createkey --name me' in page
        # Its curl lines name the host and port it is served on.
        other = APIClient().get("/", HTTP_HOST="localhost:8123").content.decode()
        assert "http://localhost:8123/v1/ping" in other and "127.0.0.1:8000" not in other


class TestScopes:
    def test_read_scope_lists(self) -> None:
        client = client_for(make_key(scopes=["orders:read"])[1])
        assert client.get(ORDERS).status_code == 200

    def test_write_needs_write_scope(self) -> None:
        client = client_for(make_key(scopes=["orders:read"])[1])
        response = post_json(client, {"sku": "ABC-1", "quantity": 1})
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "insufficient_scope"
        assert response["WWW-Authenticate"] == (
            'Api-Key realm="api", error="insufficient_scope", scope="orders:write"'
        )
        assert not Order.objects.exists()

    def test_read_needs_read_scope(self) -> None:
        client = client_for(make_key(scopes=["orders:write"])[1])
        response = client.get(ORDERS)
        assert response.status_code == 403
        assert 'scope="orders:read"' in response["WWW-Authenticate"]

    def test_wildcard(self) -> None:
        client = client_for(make_key(scopes=["orders:*"])[1])
        assert client.get(ORDERS).status_code == 200
        assert post_json(client, {"sku": "ABC-1", "quantity": 1}).status_code == 201

    def test_ping_needs_no_scope(self) -> None:
        assert client_for(make_key(scopes=[])[1]).get("/v1/ping").status_code == 200

    def test_undeclared_method_is_refused(self) -> None:
        client = client_for(make_key(scopes=["*"])[1])
        response = client.delete(ORDERS)
        # 403 from HasScopes, not DRF's 405: a method let through would reach the view.
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"


class TestOrders:
    def test_create_then_read(self, writer: APIClient) -> None:
        response = post_json(writer, {"sku": "ABC-123", "quantity": 3})
        assert response.status_code == 201, response.content
        order_id = response.json()["id"]
        assert writer.get(f"{ORDERS}/{order_id}").json()["sku"] == "ABC-123"
        listing = writer.get(ORDERS).json()
        assert listing["count"] == 1 and listing["results"][0]["id"] == order_id

    def test_another_owners_order_is_404(self, writer: APIClient) -> None:
        order_id = post_json(writer, {"sku": "ABC-123", "quantity": 3}).json()["id"]
        other = client_for(make_key(owner=make_user("other"))[1])
        response = other.get(f"{ORDERS}/{order_id}")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/problem+json"
        assert other.get(ORDERS).json()["count"] == 0

    def test_keys_of_one_owner_share_orders(self, writer: APIClient) -> None:
        user = make_user("shared")
        first = client_for(make_key(owner=user)[1])
        second = client_for(make_key(owner=user)[1])
        order_id = post_json(first, {"sku": "ABC-123", "quantity": 3}).json()["id"]
        assert second.get(f"{ORDERS}/{order_id}").status_code == 200

    def test_machine_keys_own_their_orders(self) -> None:
        first = client_for(make_key()[1])
        second = client_for(make_key()[1])
        order_id = post_json(first, {"sku": "ABC-123", "quantity": 3}).json()["id"]
        assert first.get(f"{ORDERS}/{order_id}").status_code == 200
        assert second.get(f"{ORDERS}/{order_id}").status_code == 404

    def test_page_size_is_capped(self) -> None:
        user = make_user("bulk")
        Order.objects.bulk_create(
            Order(owner_ref=f"user:{user.pk}", sku="ABC-1", quantity=1) for _ in range(120)
        )
        client = client_for(make_key(owner=user)[1])
        body = client.get(ORDERS, {"page_size": 1000}).json()
        assert body["count"] == 120 and len(body["results"]) == 100
        assert len(client.get(ORDERS).json()["results"]) == 20


class TestStrictInput:
    @pytest.mark.parametrize(
        ("data", "pointer"),
        [
            ({"sku": "AB", "quantity": 1}, "#/sku"),
            ({"sku": "A" * 65, "quantity": 1}, "#/sku"),
            ({"sku": "ABC 123", "quantity": 1}, "#/sku"),
            ({"sku": "ABC_123", "quantity": 1}, "#/sku"),
            ({"sku": "ÄBC-123", "quantity": 1}, "#/sku"),
            ({"sku": "ABC-123", "quantity": 0}, "#/quantity"),
            ({"sku": "ABC-123", "quantity": 101}, "#/quantity"),
            ({"sku": "ABC-123", "quantity": 1.5}, "#/quantity"),
            ({"sku": "ABC-123", "quantity": "many"}, "#/quantity"),
            ({"sku": "ABC-123"}, "#/quantity"),
            ({"sku": "ABC-123", "quantity": 1, "price": 0}, "#/price"),
            ({"sku": "ABC-123", "quantity": 1, "owner_ref": "user:1"}, "#/owner_ref"),
        ],
    )
    def test_invalid_fields(self, writer: APIClient, data: dict[str, Any], pointer: str) -> None:
        response = post_json(writer, data)
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "invalid"
        assert pointer in {error["pointer"] for error in body["errors"]}
        assert not Order.objects.exists()

    @pytest.mark.parametrize("payload", ["{", "[1,2", "nope", '{"sku": "\udc00"}', "\xff\xfe"])
    def test_malformed_json(self, writer: APIClient, payload: str) -> None:
        response = writer.post(
            ORDERS, data=payload.encode("utf-8", "surrogatepass"), content_type="application/json"
        )
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"

    def test_non_object_body(self, writer: APIClient) -> None:
        response = post_json(writer, [1, 2, 3])
        assert response.status_code == 400

    def test_body_over_one_mebibyte_is_413(self, writer: APIClient) -> None:
        body = json.dumps({"sku": "ABC-123", "quantity": 1, "pad": "x" * (1024 * 1024)})
        response = writer.post(ORDERS, data=body, content_type="application/json")
        assert response.status_code == 413
        assert response["Content-Type"] == "application/problem+json"
        assert not Order.objects.exists()

    def test_unsupported_media_type(self, writer: APIClient) -> None:
        response = writer.post(
            ORDERS, data="sku=ABC", content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 415
        assert response["Content-Type"] == "application/problem+json"


class TestNegotiation:
    """The demo's ``CachedContentNegotiation`` answers as DRF's, asked twice."""

    @pytest.mark.parametrize("accept", ["*/*", "application/json", "application/*"])
    def test_json_is_served(self, writer: APIClient, accept: str) -> None:
        for _ in range(2):
            response = writer.get(ORDERS, HTTP_ACCEPT=accept)
            assert response.status_code == 200
            assert response["Content-Type"] == "application/json"

    def test_an_unservable_accept_is_406_problem_json(self, writer: APIClient) -> None:
        for _ in range(2):
            response = writer.get(ORDERS, HTTP_ACCEPT="text/html")
            assert response.status_code == 406
            assert response["Content-Type"] == "application/problem+json"

    def test_an_unknown_format_is_404(self, writer: APIClient) -> None:
        assert writer.get(ORDERS + "?format=xml").status_code == 404
        assert writer.get(ORDERS + "?format=json").status_code == 200


class TestDjangoRefusals:
    """Refusals from Django itself, outside DRF, are problem+json too."""

    def test_csrf_failure(self) -> None:
        from django.test import Client

        response = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
        assert response.status_code == 403
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == "csrf_failed"

    @pytest.mark.parametrize("method", ["post", "put", "delete", "trace"])
    def test_index_refuses_other_methods(self, method: str) -> None:
        from django.test import Client

        response = getattr(Client(), method)("/")
        assert response.status_code == 405
        assert response["Content-Type"] == "application/problem+json"
        assert response["Allow"] == "GET, HEAD, OPTIONS"


def test_health_is_never_throttled() -> None:
    for _ in range(40):
        response = APIClient().get("/health", REMOTE_ADDR="192.0.2.1")
        assert response.status_code == 200
        assert not [name for name in response.headers if "ratelimit" in name.lower()]


def test_server_errors_reach_stderr_with_their_traceback() -> None:
    """The demo's LOGGING: django.request errors (with exc_info) propagate to a root handler
    that writes to stderr; 4xx warnings do not."""
    import logging

    request_logger = logging.getLogger("django.request")
    assert request_logger.getEffectiveLevel() == logging.ERROR
    assert request_logger.propagate
    root = logging.getLogger()
    streams = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
    assert streams and root.level <= logging.ERROR
    record = request_logger.makeRecord(
        "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (), None
    )
    assert all(handler.level <= record.levelno for handler in streams)
