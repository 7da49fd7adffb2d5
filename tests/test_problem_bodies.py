"""Every problem document apiauth writes, to the letter: clients and their parsers read these
fields (``code``, ``detail``, ``errors``, ``limit``), so each is part of the contract."""

from __future__ import annotations

import http
import json
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, RequestDataTooBig, TooManyFieldsSent
from django.http import Http404, HttpRequest, JsonResponse
from django.test import RequestFactory, override_settings
from rest_framework import exceptions
from rest_framework.request import Request

from apiauth import errors
from apiauth.throttling import gcra
from apiauth.throttling.limiter import RESULT_ATTR, Outcome
from apiauth.throttling.rates import Limit


def expected(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"urn:apiauth:problem:{code}",
        "title": http.HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def handled(exc: Exception, request: Any = None) -> tuple[dict[str, Any], dict[str, str]]:
    response = errors.exception_handler(exc, {"request": request})
    assert response is not None and response.content_type == errors.PROBLEM_CONTENT_TYPE
    return response.data, dict(response.items())


def body(response: JsonResponse) -> dict[str, Any]:
    assert response["Content-Type"] == "application/problem+json"
    data: dict[str, Any] = json.loads(response.content)
    return data


class TestDjangoHandlers:
    def request(self) -> HttpRequest:
        return RequestFactory().get("/")

    def test_bad_request(self) -> None:
        response = errors.bad_request(self.request())
        assert response.status_code == 400
        assert body(response) == expected(
            400, "bad_request", "The request could not be understood."
        )

    def test_permission_denied(self) -> None:
        response = errors.permission_denied(self.request())
        assert body(response) == expected(403, "permission_denied", "You may not do this.")

    def test_page_not_found(self) -> None:
        assert body(errors.page_not_found(self.request())) == expected(
            404, "not_found", "No such resource."
        )

    def test_server_error(self) -> None:
        request = self.request()
        assert body(errors.server_error(request)) == expected(
            500, "server_error", "An unexpected error occurred."
        )
        request.request_id = "r-1"  # type: ignore[attr-defined]
        assert body(errors.server_error(request))["request_id"] == "r-1"

    def test_csrf_failure(self) -> None:
        response = errors.csrf_failure(self.request(), reason="CSRF cookie not set.")
        assert response.status_code == 403
        assert body(response) == expected(
            403, "csrf_failed", "CSRF verification failed: reload the page and try again."
        )

    def test_method_not_allowed(self) -> None:
        request = RequestFactory().generic("BREW" + "W" * 40, "/")
        response = errors.method_not_allowed(request, ["GET", "HEAD"])
        assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
        assert body(response) == expected(
            405, "method_not_allowed", f"Method “{('BREW' + 'W' * 40)[:20]}” not allowed."
        )


class TestConversions:
    def test_http404(self) -> None:
        assert handled(Http404())[0] == expected(404, "not_found", "Not found.")

    def test_django_permission_denied(self) -> None:
        assert handled(PermissionDenied())[0] == expected(
            403, "permission_denied", "You do not have permission to perform this action."
        )

    def test_request_data_too_big(self) -> None:
        assert handled(RequestDataTooBig())[0] == expected(
            413, "payload_too_large", "The request body is too large."
        )

    def test_too_many_fields(self) -> None:
        assert handled(TooManyFieldsSent())[0] == expected(400, "parse_error", "Too many fields.")

    def test_validation_error(self) -> None:
        data, _headers = handled(exceptions.ValidationError({"sku": ["Bad."], "q": "Plain."}))
        assert data == expected(
            400,
            "invalid",
            "The request is invalid: see errors.",
            errors=[
                {"pointer": "#/sku", "detail": "Bad.", "code": "invalid"},
                {"pointer": "#/q", "detail": "Plain.", "code": "invalid"},
            ],
        )

    def test_codes_of_field_errors(self) -> None:
        detail = {"a": [exceptions.ErrorDetail("Short.", code="min_length")]}
        data, _headers = handled(exceptions.ValidationError(detail))
        assert data["errors"] == [{"pointer": "#/a", "detail": "Short.", "code": "min_length"}]
        assert errors._field_errors("Plain text") == [
            {"pointer": "#", "detail": "Plain text", "code": "invalid"}
        ]

    def test_structured_detail_keeps_the_default_text(self) -> None:
        data, _headers = handled(exceptions.NotFound(["a", "b"]))
        assert data == expected(
            404,
            "not_found",
            "Not found.",
            errors=[
                {"pointer": "#", "detail": "a", "code": "not_found"},
                {"pointer": "#", "detail": "b", "code": "not_found"},
            ],
        )

    def test_authentication_failed_with_its_challenge(self) -> None:
        exc = errors.AuthenticationFailed("Invalid API key.", "unknown", 'Api-Key realm="api"')
        data, headers = handled(exc)
        assert data == expected(401, "unknown", "Invalid API key.")
        assert headers["WWW-Authenticate"] == 'Api-Key realm="api"'
        assert "Retry-After" not in headers

    def test_insufficient_scope(self) -> None:
        data, headers = handled(errors.InsufficientScope(["a:r", "b:w"], "Bearer"))
        assert data == expected(
            403, "insufficient_scope", "This credential lacks the scope(s): a:r, b:w."
        )
        assert headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope", scope="a:r b:w"'

    def test_too_many_failures(self) -> None:
        data, headers = handled(errors.TooManyFailures(5.5))
        assert data == expected(
            429,
            "too_many_failures",
            "Too many failed authentication attempts from your address. Expected available in 6 "
            "seconds.",
            retry_after=6,
        )
        assert headers["Retry-After"] == "6"

    def test_cost_exceeds_limit(self) -> None:
        data, headers = handled(errors.CostExceedsLimit("burst", 3, 5))
        assert data == expected(
            429,
            "cost_exceeds_limit",
            "This request costs 5 units, more than the “burst” limit ever holds (3): it can "
            "never be admitted.",
            limit={"name": "burst", "quota": 3},
            cost=5,
        )
        assert "Retry-After" not in headers

    @override_settings(APIAUTH={"RATELIMIT_BREAKER_SECONDS": 2.5})
    def test_rate_limit_unavailable(self) -> None:
        data, headers = handled(errors.RateLimitServiceUnavailable())
        assert data == expected(
            503,
            "rate_limit_unavailable",
            "Rate limiting is temporarily unavailable; try again shortly.",
            retry_after=3,
        )
        assert headers["Retry-After"] == "3"

    @override_settings(APIAUTH={"PROBLEM_TYPE_BASE": "https://docs.example.com/errors/"})
    def test_type_base(self) -> None:
        assert handled(Http404())[0]["type"] == "https://docs.example.com/errors/not_found"


class TestThrottledDetails:
    def refused(self) -> Outcome:
        burst = Limit("burst", "bucket", 10, interval_us=1_000_000)
        day = Limit("day", "quota", 1000, window_s=86400)
        states = (gcra.LimitState(burst, 0, 10_000_000, 2_000_000), gcra.LimitState(day, 5, 9, 0))
        return Outcome(gcra.Decision(False, states))

    def test_names_the_limit_through_drfs_request(self) -> None:
        django_request = RequestFactory().get("/")
        setattr(django_request, RESULT_ATTR, self.refused())
        django_request.request_id = "trace-9"  # type: ignore[attr-defined]
        request = Request(django_request)
        request.request_id = "trace-9"  # type: ignore[attr-defined]
        data, _headers = handled(exceptions.Throttled(wait=2), request)
        assert data == expected(
            429,
            "throttled",
            "Request was throttled. Expected available in 2 seconds.",
            retry_after=2,
            limit={"name": "burst", "quota": 10, "window": 10},
            request_id="trace-9",
        )

    def test_on_a_plain_django_request(self) -> None:
        django_request = RequestFactory().get("/")
        setattr(django_request, RESULT_ATTR, self.refused())
        data, _headers = handled(exceptions.Throttled(wait=2), django_request)
        assert data["limit"] == {"name": "burst", "quota": 10, "window": 10}

    @pytest.mark.parametrize("outcome", [None, Outcome(None)])
    def test_without_a_decision(self, outcome: Outcome | None) -> None:
        django_request = RequestFactory().get("/")
        setattr(django_request, RESULT_ATTR, outcome)
        data, _headers = handled(exceptions.Throttled(wait=2), django_request)
        assert "limit" not in data


def test_field_errors_in_a_mixed_list_keep_their_codes() -> None:
    detail = [
        exceptions.ErrorDetail("First.", code="first"),
        {"a": [exceptions.ErrorDetail("Inner.", code="inner")]},
    ]
    assert errors._field_errors(detail) == [
        {"pointer": "#/0", "detail": "First.", "code": "first"},
        {"pointer": "#/1/a", "detail": "Inner.", "code": "inner"},
    ]


def test_insufficient_scope_keeps_its_scopes() -> None:
    assert errors.InsufficientScope(["a:r", "b:w"], "Bearer").scopes == ["a:r", "b:w"]


def test_allow_header_as_named() -> None:
    response = errors.method_not_allowed(RequestFactory().post("/"), ["GET"])
    assert ("Allow", "GET") in list(response.items())  # a list: the view looks up any case
