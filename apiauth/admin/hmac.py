"""HMAC credentials in the admin: issued with the secret shown once, rotated, revoked."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apiauth.admin.actions import RotatesSecret
from apiauth.admin.base import CredentialAdmin
from apiauth.forms import HMACCredentialForm
from apiauth.models import HMACCredential


@admin.register(HMACCredential)
class HMACCredentialAdmin(RotatesSecret, CredentialAdmin):
    """A secret is rotated, not rolled: the access key id stays, and the previous secret keeps
    verifying for a grace period."""

    form = HMACCredentialForm
    list_display = [
        "name",
        "key_id",
        "owner",
        "scope_list",
        "status_badge",
        "last_used",
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
    rotated_title = _("HMAC credential secret rotated")

    @admin.display(description=_("access key id"), ordering="access_key_id")
    def key_id(self, obj: HMACCredential) -> str:
        return format_html("<code>{}</code>", obj.access_key_id)
