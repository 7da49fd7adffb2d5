"""HMAC credentials in the admin: issued with the secret shown once, rotated, revoked."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from apiauth.admin.base import CredentialAdmin
from apiauth.forms import HMACCredentialForm, RotateForm
from apiauth.models import HMACCredential, RevokedCredential, may_act_as


@admin.register(HMACCredential)
class HMACCredentialAdmin(CredentialAdmin):
    """A secret is rotated, not rolled: the access key id stays, and the previous secret keeps
    verifying for a grace period."""

    form = HMACCredentialForm
    list_display = [
        "name",
        "access_key_id",
        "owner",
        "scope_list",
        "status_badge",
        "last_used_at",
        "expires_at",
    ]
    search_fields = ["name", "=access_key_id", f"owner__{get_user_model().USERNAME_FIELD}"]
    actions = ["revoke_selected", "rotate_secret", "reset_rate_limits"]
    readonly_on_change = [
        "access_key_id",
        "status_badge",
        "rate_limit_state",
        "previous_secret_expires_at",
        "created_at",
        "created_by",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
        "revoked_reason",
    ]
    issued_title = _("HMAC credential issued")
    issued_template = "admin/apiauth/hmaccredential/secret_issued.html"
    renew_url = "rotate"
    renew_action = "rotate_secret"
    renew_label = _("Rotate secret…")

    @admin.action(description=_("Rotate the selected credential's secret…"), permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        credential = self.renewable(request, queryset)
        if credential is None:
            return None
        if not may_act_as(request.user, credential.owner):
            raise PermissionDenied
        form = RotateForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self.render_action_page(
                request,
                queryset,
                "rotate_secret",
                form,
                "admin/apiauth/hmaccredential/rotate_confirmation.html",
                _("Rotate the secret"),
            )
        try:
            secret = HMACCredential.objects.rotate_secret(
                credential, form.grace_period, by=request.user
            )
        except RevokedCredential:
            raise PermissionDenied("This credential was revoked meanwhile.") from None
        self.audit(request, "rotate", credential, grace_seconds=form.cleaned_data["grace"])
        return self.render_secret(request, credential, secret, _("HMAC credential secret rotated"))
