"""The OAuth endpoints described in full: form bodies, token and introspection answers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

from apiauth.conf import conf

# The OAuth endpoints -----------------------------------------------------------------------

CLIENT_FIELDS = {
    "client_id": serializers.CharField(
        required=False,
        help_text="An application's client id (client_secret_post, or a public client).",
    ),
    "client_secret": serializers.CharField(
        required=False, help_text="An application's secret (client_secret_post)."
    ),
}

TOKEN_REQUEST = inline_serializer(
    "TokenRequest",
    {
        "grant_type": serializers.ChoiceField(
            choices=["client_credentials", "authorization_code", "refresh_token"]
        ),
        "scope": serializers.CharField(
            required=False, help_text="Space-separated; at most what the client holds."
        ),
        "code": serializers.CharField(required=False, help_text="authorization_code"),
        "redirect_uri": serializers.CharField(required=False, help_text="authorization_code"),
        "code_verifier": serializers.CharField(
            required=False, help_text="authorization_code: the PKCE verifier (RFC 7636)."
        ),
        "refresh_token": serializers.CharField(required=False, help_text="refresh_token"),
        **CLIENT_FIELDS,
    },
)

TOKEN_RESPONSE = inline_serializer(
    "TokenResponse",
    {
        "access_token": serializers.CharField(),
        "token_type": serializers.ChoiceField(choices=["Bearer"]),
        "expires_in": serializers.IntegerField(),
        "scope": serializers.CharField(),
        "refresh_token": serializers.CharField(required=False),
    },
)

TOKEN_ONLY = inline_serializer(
    "TokenParameter",
    {
        "token": serializers.CharField(),
        "token_type_hint": serializers.ChoiceField(
            choices=["access_token", "refresh_token"], required=False
        ),
        **CLIENT_FIELDS,
    },
)

INTROSPECTION = inline_serializer(
    "Introspection",
    {
        "active": serializers.BooleanField(),
        "token_type": serializers.CharField(required=False),
        "client_id": serializers.CharField(required=False),
        "sub": serializers.CharField(required=False),
        "aud": serializers.JSONField(required=False),
        "iss": serializers.CharField(required=False),
        "exp": serializers.IntegerField(required=False),
        "iat": serializers.IntegerField(required=False),
        "nbf": serializers.IntegerField(required=False),
        "jti": serializers.CharField(required=False),
        "scope": serializers.CharField(required=False),
    },
)


FORM = "application/x-www-form-urlencoded"


def described(view: str, describe: Callable[[], dict[str, Any]]) -> type[OpenApiViewExtension]:
    """An extension that replaces the OAuth endpoint ``view`` with itself under
    ``extend_schema(**describe())``; ``describe`` is asked when the schema is generated, so
    the settings it reads are those of that moment."""

    def view_replacement(self: OpenApiViewExtension) -> Any:
        @extend_schema(tags=["oauth"], **describe())
        class Fixed(self.target_class):  # type: ignore[name-defined,misc]
            pass

        return Fixed

    name = view.rsplit(".", 1)[1] + "Schema"
    return type(
        name, (OpenApiViewExtension,), {"target_class": view, "view_replacement": view_replacement}
    )


TokenViewSchema = described(
    "apiauth.views.TokenView",
    lambda: {
        "summary": "Issue an access token (RFC 6749)",
        "description": (
            "client_credentials (an API key or a confidential application), "
            "authorization_code with PKCE (an application acting for a person) and "
            "refresh_token. Never cached."
        ),
        "request": {FORM: TOKEN_REQUEST},
        "responses": {200: TOKEN_RESPONSE},
    },
)
RevokeViewSchema = described(
    "apiauth.views.RevokeView",
    lambda: {
        "summary": "Revoke a token (RFC 7009)",
        "description": "200 whether or not the token was known, as RFC 7009 says.",
        "request": {FORM: TOKEN_ONLY},
        "responses": {200: OpenApiResponse(description="Revoked, or unknown.")},
    },
)
IntrospectViewSchema = described(
    "apiauth.views.IntrospectView",
    lambda: {
        "summary": "Introspect a token (RFC 7662)",
        "description": (
            f"For clients holding the `{conf.jwt.introspection_scope}` scope. An "
            'inactive token answers `{"active": false}` and nothing else.'
        ),
        "request": {FORM: TOKEN_ONLY},
        "responses": {200: INTROSPECTION},
    },
)
