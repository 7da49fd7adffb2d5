from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from apiauth.login import limit_login_failures
from apiauth.views import JWKSView, MetadataView
from project.demo import views

# The API's routes come first and flat (no include): Django tries patterns in order, and an
# include resolves each request twice over (a second resolver, a second ResolverMatch).
urlpatterns = [
    path("v1/ping", views.PingView.as_view(), name="v1-ping"),
    path("v1/orders", views.OrderListView.as_view(), name="v1-order-list"),
    path("v1/orders/<int:pk>", views.OrderDetailView.as_view(), name="v1-order-detail"),
    path("", views.IndexView.as_view(), name="index"),
    path("health", views.HealthView.as_view(), name="health"),
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
