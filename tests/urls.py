from django.contrib import admin
from django.contrib.auth.views import LoginView
from django.urls import include, path

from apiauth.login import limit_login_failures
from apiauth.views import JWKSView, MetadataView
from tests.testapp import views

v1 = [
    path("ping", views.PingView.as_view(), name="ping"),
    path("orders", views.OrderListView.as_view(), name="order-list"),
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("relay/<str:to>", views.RelayView.as_view(), name="relay"),
    path("throttled-relay/<str:to>", views.ThrottledRelayView.as_view(), name="throttled-relay"),
]

urlpatterns = [
    path("health", views.HealthView.as_view(), name="health"),
    path("crash", views.CrashView.as_view(), name="crash"),
    path("v1/", include((v1, "v1"))),
    path("auth/", include("apiauth.urls")),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        limit_login_failures(LoginView.as_view(template_name="apiauth/login.html")),
        name="login",
    ),
    path(".well-known/jwks.json", JWKSView.as_view()),
    path(".well-known/oauth-authorization-server", MetadataView.as_view()),
]

handler400 = "apiauth.errors.bad_request"
handler403 = "apiauth.errors.permission_denied"
handler404 = "apiauth.errors.page_not_found"
handler500 = "apiauth.errors.server_error"
