from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apiauth.login import limit_login_failures
from apiauth.views import JWKSView, MetadataView
from project.demo import views

v1 = [
    path("ping", views.PingView.as_view(), name="ping"),
    path("orders", views.OrderListView.as_view(), name="order-list"),
    path("orders/<int:pk>", views.OrderDetailView.as_view(), name="order-detail"),
]

urlpatterns = [
    path("", views.IndexView.as_view(), name="index"),
    path("health", views.HealthView.as_view(), name="health"),
    path("v1/", include((v1, "v1"))),
    path("auth/", include("apiauth.urls")),
    path(".well-known/jwks.json", JWKSView.as_view(), name="jwks"),
    path(".well-known/oauth-authorization-server", MetadataView.as_view(), name="metadata"),
    path(
        "accounts/login/",
        limit_login_failures(LoginView.as_view(template_name="apiauth/login.html")),
        name="login",
    ),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
]

handler400 = "apiauth.errors.bad_request"
handler403 = "apiauth.errors.permission_denied"
handler404 = "apiauth.errors.page_not_found"
handler500 = "apiauth.errors.server_error"
