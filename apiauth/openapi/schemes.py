"""The security schemes of apiauth's authentication classes, with each operation's scopes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.settings import spectacular_settings

from apiauth.conf import conf
from apiauth.permissions import HasScopes, scopes_required


def scopes_of(auto_schema: Any) -> list[str]:
    """What the operation's view requires of its method through :class:`HasScopes`."""
    view = auto_schema.view
    if not any(isinstance(p, HasScopes) for p in view.get_permissions()):
        return []
    return scopes_required(getattr(view, "required_scopes", ()), auto_schema.method) or []


def oas31() -> bool:
    return str(spectacular_settings.OAS_VERSION).startswith("3.1")


class ScopedScheme(OpenApiAuthenticationExtension):
    """A scheme whose requirement carries the operation's scopes where OpenAPI allows it."""

    match_subclasses = True
    name: str

    def get_security_requirement(self, auto_schema: Any) -> dict[str, list[Any]]:
        return {self.name: scopes_of(auto_schema) if oas31() else []}


class APIKeyScheme(ScopedScheme):
    target_class = "apiauth.authentication.APIKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": conf.KEY_HEADER,
            "description": (
                f"An API key (`{conf.KEY_PREFIX}_…`) in the `{conf.KEY_HEADER}` header, or "
                "as `Authorization: Api-Key <key>`."
            ),
        }


class JWTScheme(ScopedScheme):
    target_class = "apiauth.authentication.JWTAuthentication"
    name = "BearerJWT"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "An access token from POST /auth/token (or a trusted issuer) as "
                "`Authorization: Bearer <token>`."
            ),
        }


class SigV4Scheme(ScopedScheme):
    target_class = "apiauth.authentication.HMACAuthentication"
    name = "SigV4"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        settings = conf.hmac
        regions = " or ".join(f"`{region}`" for region in sorted(settings.regions))
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                f"AWS Signature Version 4 ({settings.algorithm}): service "
                f"`{settings.service}`, region {regions}, "
                f"with `{settings.header_prefix}Date` and `{settings.header_prefix}Content-"
                "SHA256` signed; or a presigned URL (X-Amz-* query parameters). Sign with "
                "botocore's SigV4Auth or apiauth.client."
            ),
            "x-amazon-apigateway-authtype": "awsSigv4",
        }


class OAuthClientScheme(OpenApiAuthenticationExtension):
    target_class = "apiauth.authentication.oauth_client.OAuthClientAuthentication"
    name = "OAuthClient"
    match_subclasses = True

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": (
                "An OAuth application's client id and secret (client_secret_basic); "
                "client_secret_post and public clients send client_id in the body instead."
            ),
        }
