"""The OAuth 2.0 endpoints: tokens (``tokens``), the authorization endpoint and its consent
page (``authorize``), a person's own authorizations (``people``), and the authorization
server's metadata (``discovery``)."""

from apiauth.views.authorize import AuthorizeView
from apiauth.views.discovery import MetadataView
from apiauth.views.people import AuthorizationsView
from apiauth.views.tokens import (
    ClientAuthenticated,
    IntrospectView,
    JWKSView,
    OAuthError,
    OAuthFormParser,
    OAuthView,
    RevokeView,
    TokenView,
    invalid_client,
    key_usable,
    token_verifier,
)

__all__ = [
    "AuthorizationsView",
    "AuthorizeView",
    "ClientAuthenticated",
    "IntrospectView",
    "JWKSView",
    "MetadataView",
    "OAuthError",
    "OAuthFormParser",
    "OAuthView",
    "RevokeView",
    "TokenView",
    "invalid_client",
    "key_usable",
    "token_verifier",
]
