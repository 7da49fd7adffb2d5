from __future__ import annotations

import uuid

import pytest
from django.http import HttpRequest
from django.test import RequestFactory, override_settings
from rest_framework import exceptions
from rest_framework.test import APIClient

from apiauth import errors
from tests.factories import make_key

pytestmark = pytest.mark.django_db


class TestRequestId:
    def test_new_uuid_when_absent(self) -> None:
        response = APIClient().get("/health")
        uuid.UUID(response["X-Request-Id"])

    def test_well_formed_incoming_id_is_kept(self) -> None:
        response = APIClient().get("/health", HTTP_X_REQUEST_ID="req-123.abc:7")
        assert response["X-Request-Id"] == "req-123.abc:7"

    @pytest.mark.parametrize("value", ["", "a b", "x" * 200, "<script>", "id\r\nSet-Cookie: x"])
    def test_malformed_incoming_id_is_replaced(self, value: str) -> None:
        response = APIClient().get("/health", HTTP_X_REQUEST_ID=value)
        uuid.UUID(response["X-Request-Id"])

    def test_request_id_in_problem_body(self) -> None:
        response = APIClient().get("/v1/ping", HTTP_X_REQUEST_ID="trace-1")
        assert response.json()["request_id"] == "trace-1"


class TestSecurityHeaders:
    def test_on_every_response(self) -> None:
        for response in (APIClient().get("/health"), APIClient().get("/v1/ping")):
            assert response["X-Content-Type-Options"] == "nosniff"
            assert response["X-Frame-Options"] == "DENY"
            assert response["Referrer-Policy"] == "same-origin"

    def test_no_store_when_credentials_were_sent(self) -> None:
        _key, raw = make_key()
        assert APIClient().get("/v1/ping", HTTP_X_API_KEY=raw)["Cache-Control"] == "no-store"
        response = APIClient().get("/health", HTTP_AUTHORIZATION="Bearer x")
        assert response["Cache-Control"] == "no-store"

    def test_no_store_follows_the_configured_key_header_and_parameter(self) -> None:
        def cache_control(**extra: str) -> str:
            return str(APIClient().get("/health", None, False, **extra).get("Cache-Control", ""))

        assert cache_control(HTTP_X_API_KEY="x") == "no-store"  # remembered for the default
        with override_settings(APIAUTH={"KEY_HEADER": "X-Service-Token"}):
            assert cache_control(HTTP_X_SERVICE_TOKEN="x") == "no-store"
            assert "no-store" not in cache_control(HTTP_X_API_KEY="x")
        with override_settings(APIAUTH={"KEY_QUERY_PARAM": "api_key"}):
            assert APIClient().get("/health?api_key=x")["Cache-Control"] == "no-store"
        assert "no-store" not in APIClient().get("/health?api_key=x").get("Cache-Control", "")

    def test_cacheable_without_credentials(self) -> None:
        assert "no-store" not in APIClient().get("/health").get("Cache-Control", "")


class TestCors:
    def test_preflight_from_allowed_origin(self, settings: object) -> None:
        from django.test import override_settings

        with override_settings(CORS_ALLOWED_ORIGINS=["https://app.example"]):
            response = APIClient().options(
                "/v1/orders",
                HTTP_ORIGIN="https://app.example",
                HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
                HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key, content-type",
            )
            assert response.status_code == 200
            assert response["Access-Control-Allow-Origin"] == "https://app.example"
            assert "x-api-key" in response["Access-Control-Allow-Headers"]
            _key, raw = make_key()
            response = APIClient().get(
                "/v1/ping", HTTP_ORIGIN="https://app.example", HTTP_X_API_KEY=raw
            )
            exposed = response["Access-Control-Expose-Headers"].lower()
            assert "x-ratelimit-remaining" in exposed and "retry-after" in exposed

    def test_other_origin_gets_no_cors_headers(self) -> None:
        response = APIClient().get("/health", HTTP_ORIGIN="https://evil.example")
        assert "Access-Control-Allow-Origin" not in response


class TestExceptionHandler:
    def handle(self, exc: Exception) -> dict[str, object]:
        response = errors.exception_handler(exc, {"request": None})
        assert response is not None
        assert response.content_type == errors.PROBLEM_CONTENT_TYPE
        data: dict[str, object] = response.data
        return data

    def test_nested_validation_errors_become_pointers(self) -> None:
        exc = exceptions.ValidationError(
            {"items": [{"sku": ["Bad."]}, {}], "a/b~c": ["Odd name."], "non_field_errors": ["X"]}
        )
        body = self.handle(exc)
        pointers = {error["pointer"] for error in body["errors"]}  # type: ignore[attr-defined]
        assert pointers == {"#/items/0/sku", "#/a~1b~0c", "#/non_field_errors"}

    def test_validation_error_with_a_plain_message(self) -> None:
        body = self.handle(exceptions.ValidationError("Nope."))
        assert body["errors"] == [{"pointer": "#", "detail": "Nope.", "code": "invalid"}]

    def test_plain_messages_nested_in_a_dict(self) -> None:
        body = self.handle(exceptions.ValidationError({"sku": "Bad."}))
        assert body["errors"] == [{"pointer": "#/sku", "detail": "Bad.", "code": "invalid"}]

    def test_structured_detail_on_other_errors(self) -> None:
        body = self.handle(exceptions.PermissionDenied({"scope": ["missing"]}))
        assert body["status"] == 403
        assert body["errors"] == [
            {"pointer": "#/scope", "detail": "missing", "code": "permission_denied"}
        ]

    def test_throttled_has_retry_after(self) -> None:
        response = errors.exception_handler(exceptions.Throttled(wait=2.1), {})
        assert response is not None
        assert response["Retry-After"] == "3"
        assert response.data["retry_after"] == 3

    def test_django_errors_are_converted(self) -> None:
        from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
        from django.http import Http404

        assert self.handle(Http404())["status"] == 404
        assert self.handle(PermissionDenied())["status"] == 403
        assert self.handle(RequestDataTooBig())["status"] == 413
        assert self.handle(TooManyFieldsSent())["status"] == 400

    def test_unknown_exceptions_are_left_to_django(self) -> None:
        assert errors.exception_handler(RuntimeError("bug"), {}) is None

    def test_unknown_status_code_title(self) -> None:
        class Odd(exceptions.APIException):
            status_code = 599

        assert self.handle(Odd())["title"] == "Error"

    @pytest.mark.parametrize(
        ("handler", "status"),
        [
            (errors.bad_request, 400),
            (errors.permission_denied, 403),
            (errors.page_not_found, 404),
        ],
    )
    def test_django_handlers(self, handler: object, status: int) -> None:
        request: HttpRequest = RequestFactory().get("/")
        response = handler(request, None)  # type: ignore[operator]
        assert response.status_code == status
        assert response["Content-Type"] == errors.PROBLEM_CONTENT_TYPE

    def test_server_error_handler(self) -> None:
        response = errors.server_error(RequestFactory().get("/"))
        assert response.status_code == 500
        assert b"Traceback" not in response.content

    def test_problem_response_headers(self) -> None:
        response = errors.problem_response(503, "unavailable", "Later.", {"Retry-After": "5"})
        assert response["Retry-After"] == "5"
