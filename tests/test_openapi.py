"""apiauth's drf-spectacular extensions in a project of its own (the demo's schema, served and
fuzzed, is tests/demo/test_demo_openapi.py): OpenAPI 3.0 and 3.1, subclasses, the check."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import override_settings
from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import spectacular_settings
from openapi_spec_validator import validate
from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny

from apiauth.authentication import APIKeyAuthentication, HMACAuthentication, JWTAuthentication
from apiauth.permissions import HasScopes
from apiauth.throttling import TokenBucketThrottle


class ThingSerializer(serializers.Serializer[Any]):
    name = serializers.CharField()


class OurKeys(APIKeyAuthentication):
    """A project's subclass: described as the class it extends."""


class ThingsView(generics.ListCreateAPIView[Any]):
    authentication_classes = [OurKeys, HMACAuthentication, JWTAuthentication]
    permission_classes = [HasScopes]
    throttle_classes = [TokenBucketThrottle]
    serializer_class = ThingSerializer
    required_scopes = {"GET": ["things:read"], "*": ["things:write"]}
    queryset: Any = []


class OpenView(generics.RetrieveAPIView[Any]):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    serializer_class = ThingSerializer


urlpatterns = [
    path("things", ThingsView.as_view()),
    path("things/<int:pk>", OpenView.as_view()),
]

REST = {"DEFAULT_SCHEMA_CLASS": "apiauth.openapi.AutoSchema"}


def generate(version: str = "3.0.3") -> dict[str, Any]:
    GENERATOR_STATS.reset()
    with override_settings(REST_FRAMEWORK=REST), pytest.MonkeyPatch.context() as patch:
        patch.setattr(spectacular_settings, "OAS_VERSION", version)
        generator = SchemaGenerator(patterns=urlpatterns)  # type: ignore[no-untyped-call]
        schema: dict[str, Any] = generator.get_schema(public=True)  # type: ignore[no-untyped-call]
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    return schema


def test_openapi_3_0_keeps_scopes_out_of_the_requirements() -> None:
    """3.0 requires empty lists for schemes other than OAuth 2: the scopes go beside them."""
    schema = generate()
    validate(schema)
    things = schema["paths"]["/things"]
    assert things["get"]["security"] == [{"ApiKey": []}, {"SigV4": []}, {"BearerJWT": []}]
    assert things["get"]["x-required-scopes"] == ["things:read"]
    assert things["post"]["x-required-scopes"] == ["things:write"]  # the "*" entry
    assert things["post"]["description"].endswith("Requires the scopes: `things:write`.")


def test_openapi_3_1_puts_them_in_the_requirements() -> None:
    schema = generate("3.1.0")
    validate(schema)
    assert schema["paths"]["/things"]["post"]["security"] == [
        {"ApiKey": ["things:write"]},
        {"SigV4": ["things:write"]},
        {"BearerJWT": ["things:write"]},
    ]


def test_the_answers_of_an_open_and_a_guarded_operation() -> None:
    schema = generate()
    guarded = schema["paths"]["/things"]["post"]["responses"]
    assert sorted(guarded) == ["201", "400", "401", "403", "413", "415", "429"]
    assert sorted(guarded["201"]["headers"]) == sorted(
        [
            "RateLimit",
            "RateLimit-Policy",
            "X-RateLimit-Limit",
            "X-RateLimit-Remaining",
            "X-RateLimit-Reset",
        ]
    )
    assert guarded["201"]["headers"]["RateLimit"] == {"$ref": "#/components/headers/RateLimit"}
    assert schema["components"]["headers"]["X-RateLimit-Reset"]["schema"] == {"type": "integer"}
    # A list: an invalid page is a 404 only when it is paginated (this one is not).
    assert "404" not in schema["paths"]["/things"]["get"]["responses"]
    # Open: no 401, 403 or 429; a path with a parameter may be a 404.
    open_ = schema["paths"]["/things/{id}"]["get"]
    assert sorted(open_["responses"]) == ["200", "404"] and open_["security"] == [{}]
    problem = schema["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status", "detail", "code"]


def test_a_check_names_drf_spectaculars_own_schema_class() -> None:
    with override_settings(
        REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
    ):
        found = [m.id for m in checks.run_checks() if m.id == "apiauth.W014"]
    assert found == ["apiauth.W014"]
    with override_settings(REST_FRAMEWORK=REST):
        assert not [m for m in checks.run_checks() if m.id == "apiauth.W014"]
