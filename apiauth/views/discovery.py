"""``GET /.well-known/oauth-authorization-server``: the authorization server's metadata
(RFC 8414), so OAuth client libraries find the endpoints and what they accept.

RFC 8414 §3 places the document at the site root, after ``/.well-known/``: mount this view
there as well as under ``auth/`` (the demo does), as for the JWKS.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views import View

from apiauth.conf import conf
from apiauth.tokens import local_issuer

GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"]
TOKEN_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]


class MetadataView(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(f"apiauth:{name}"))

        document = {
            "issuer": local_issuer().iss,
            "authorization_endpoint": url("authorize"),
            "token_endpoint": url("token"),
            "revocation_endpoint": url("revoke"),
            "introspection_endpoint": url("introspect"),
            "jwks_uri": url("jwks"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": GRANT_TYPES,
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": TOKEN_AUTH_METHODS,
            "scopes_supported": sorted(conf.SCOPES),
            "authorization_response_iss_parameter_supported": True,
        }
        response = JsonResponse(document)
        patch_cache_control(response, public=True, max_age=conf.jwt.jwks_max_age)
        return response
