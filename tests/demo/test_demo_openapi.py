"""The demo's OpenAPI schema: valid, complete for apiauth's schemes and answers, served with
its UI offline; and the demo fuzzed from it (Schemathesis): no 5xx, only documented answers."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from openapi_spec_validator import validate
from schemathesis import GenerationMode

from apiauth.models import SigningKey
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db

SCHEMA = "/api/schema"


def fetch_schema() -> dict[str, Any]:
    response = Client().get(SCHEMA, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content
    return dict(json.loads(response.content))


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    # Module-scoped: the schema reads no rows, only the code.
    return fetch_schema()


def test_the_schema_is_valid_openapi_3_1(schema: dict[str, Any]) -> None:
    assert schema["openapi"] == "3.1.0"
    validate(schema)


def test_every_scheme_is_described(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["BearerJWT"]["scheme"] == "bearer" and schemes["BearerJWT"]["bearerFormat"]
    assert schemes["SigV4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert "service `apiauth`, region `global`" in schemes["SigV4"]["description"]
    assert schemes["OAuthClient"] == {**schemes["OAuthClient"], "scheme": "basic"}


def test_each_operation_names_its_scopes(schema: dict[str, Any]) -> None:
    orders = schema["paths"]["/v1/orders"]
    assert orders["get"]["security"] == [
        {"ApiKey": ["orders:read"]},
        {"SigV4": ["orders:read"]},
        {"BearerJWT": ["orders:read"]},
    ]
    assert orders["post"]["x-required-scopes"] == ["orders:write"]
    assert "Requires the scopes: `orders:write`." in orders["post"]["description"]
    assert schema["paths"]["/health"]["get"]["security"] == [{}]


def test_apiauths_answers_on_every_operation(schema: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            if path == "/health":
                assert set(responses) == {"200"}
                continue
            for status in ("401", "403", "429"):
                assert responses[status]["content"]["application/problem+json"]["schema"] == (
                    problem
                ), (path, method, status)
            assert "WWW-Authenticate" in responses["401"]["headers"]
            assert "Retry-After" in responses["429"]["headers"]
            ok = next(r for code, r in responses.items() if code.startswith("2"))
            assert {"RateLimit", "RateLimit-Policy", "X-RateLimit-Remaining"} <= set(ok["headers"])
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses)


def test_the_oauth_endpoints_are_described(schema: dict[str, Any]) -> None:
    token = schema["paths"]["/auth/token"]["post"]
    body = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert body == {"$ref": "#/components/schemas/TokenRequest"}
    request = schema["components"]["schemas"]["TokenRequest"]
    grant_type = request["properties"]["grant_type"]["$ref"].rsplit("/", 1)[1]
    assert schema["components"]["schemas"][grant_type]["enum"] == [
        "client_credentials",
        "authorization_code",
        "refresh_token",
    ]
    assert {"code_verifier", "refresh_token", "client_id", "client_secret"} <= set(
        request["properties"]
    )
    response = schema["components"]["schemas"]["TokenResponse"]
    assert {"access_token", "token_type", "expires_in", "scope"} <= set(response["required"])
    introspection = schema["components"]["schemas"]["Introspection"]
    assert introspection["required"] == ["active"]
    assert token["security"] == [{"ApiKey": []}, {"OAuthClient": []}]


def test_the_ui_is_served_offline() -> None:
    page = Client().get("/api/docs")
    html = page.content.decode()
    assert page.status_code == 200
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()


# Fuzzing -----------------------------------------------------------------------------------

CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_headers_conformance,
    schemathesis.checks.response_schema_conformance,
]


@pytest.fixture
def demo_schema(db: Any, signing_key: SigningKey) -> Iterator[Any]:
    """The schema as the demo serves it, calling the demo in process (every middleware).

    Django's test client keeps the test's database connection across its requests; this WSGI
    client does not, and the request signals would close it inside the test's transaction
    (on PostgreSQL: "the connection is closed"). So, as Django's client does, they leave it be.
    """
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi(SCHEMA, get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_key() -> Iterator[str]:
    _key, raw = make_key(
        owner=make_user("fuzzer"),
        plan="enterprise",
        scopes=["orders:read", "orders:write", "tokens:introspect"],
    )
    # Hundreds of requests from one address and key: no lockout, and the orders' scope rate
    # of the enterprise plan's size, so requests reach the views (limits are tested elsewhere).
    fuzzing = {
        **django_settings.APIAUTH,
        "FAILED_AUTH_LIMITS": None,
        "SCOPE_RATES": {"orders": {"rate": "6000/min", "burst": 1000}},
    }
    with override_settings(APIAUTH=fuzzing):
        yield raw


def test_fuzzing_the_demo_from_its_own_schema(demo_schema: Any, fuzz_key: str) -> None:
    """Each operation, 30 valid and 30 invalid generated requests, every check."""
    failures: list[str] = []
    seen: Counter[tuple[str, int]] = Counter()
    operations = [result.ok() for result in demo_schema.get_all_operations()]
    assert len(operations) >= 8
    for operation, mode in itertools.product(operations, GenerationMode):

        @settings(
            max_examples=30,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode))
        def run(case: Any) -> None:
            try:
                response = case.call_and_validate(headers={"X-API-Key": fuzz_key}, checks=CHECKS)
            except Exception as exc:
                failures.append(f"{case.operation.label}: {exc}")
                raise
            seen[case.operation.label, response.status_code] += 1

        before = len(failures)
        try:
            run()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing invalid to send (no parameters)
        except Exception:
            if len(failures) == before:
                raise  # not a check's failure: the test itself went wrong
    assert not failures, "\n\n".join(failures)
    # It reached the views (accepted and refused), not only the authentication in front.
    assert seen["POST /v1/orders", 201] and seen["POST /v1/orders", 400]
    assert seen["GET /v1/orders/{id}", 404] and seen["POST /auth/token", 200]
