"""``/authorizations``: the applications a signed-in person has authorized, and a button to
end each one (its consent, refresh tokens and access tokens)."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.clickjacking import xframe_options_deny

from apiauth import audit, authorization
from apiauth.conf import conf
from apiauth.models import Consent
from apiauth.net import get_client_ip


@method_decorator(xframe_options_deny, name="dispatch")
class AuthorizationsView(LoginRequiredMixin, View):
    template_name = "apiauth/authorizations.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        registry = conf.SCOPES
        consents = (
            Consent.objects.filter(user_id=request.user.pk or 0, revoked_at__isnull=True)
            .select_related("application")
            .order_by("application__name")
        )
        context = {
            "authorizations": [
                (consent, [(s, registry.get(s, "")) for s in consent.scopes])
                for consent in consents
            ],
            "ended": request.GET.get("ended"),
        }
        response = render(request, self.template_name, context)
        add_never_cache_headers(response)
        return response

    def post(self, request: HttpRequest) -> HttpResponse:
        consent = (
            Consent.objects.filter(
                user_id=request.user.pk or 0, pk=request.POST.get("consent") or 0
            )
            .select_related("application")
            .first()
            if str(request.POST.get("consent", "")).isdigit()
            else None
        )
        if consent is None:
            return HttpResponseRedirect(request.path)
        app = consent.application
        authorization.end_authorization(app, request.user, reason="revoked by the person")
        audit.record("revoke", consent, actor=request.user, client_ip=get_client_ip(request))
        return HttpResponseRedirect(f"{request.path}?ended={app.client_id}")
