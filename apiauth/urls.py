"""The OAuth 2.0 endpoints and the JWKS: ``path("auth/", include("apiauth.urls"))``.

Relying parties usually look for the JWKS at the site root, and OAuth clients for the
metadata: mount ``apiauth.views.JWKSView`` at ``.well-known/jwks.json`` and
``apiauth.views.MetadataView`` at ``.well-known/oauth-authorization-server`` there as well (the
demo does).
"""

from __future__ import annotations

from django.urls import path

from apiauth import views

app_name = "apiauth"

urlpatterns = [
    path("token", views.TokenView.as_view(), name="token"),
    path("revoke", views.RevokeView.as_view(), name="revoke"),
    path("introspect", views.IntrospectView.as_view(), name="introspect"),
    path("authorize", views.AuthorizeView.as_view(), name="authorize"),
    path("authorizations", views.AuthorizationsView.as_view(), name="authorizations"),
    path(".well-known/jwks.json", views.JWKSView.as_view(), name="jwks"),
    path(
        ".well-known/oauth-authorization-server",
        views.MetadataView.as_view(),
        name="metadata",
    ),
]
