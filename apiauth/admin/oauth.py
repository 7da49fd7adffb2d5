"""OAuth applications and people's authorizations in the admin: issue an application (its
client secret shown once), rotate the secret, revoke it; end authorizations, and sign a person
out everywhere."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apiauth import authorization
from apiauth.admin.actions import RotatesSecret
from apiauth.admin.base import AuditedAdmin, CredentialAdmin
from apiauth.forms import ApplicationForm
from apiauth.models import Application, Consent


@admin.register(Application)
class ApplicationAdmin(RotatesSecret, CredentialAdmin):
    form = ApplicationForm
    list_display = [
        "name",
        "client",
        "kind",
        "owner",
        "status_badge",
        "last_used",
    ]
    search_fields = ["name", "=client_id"]
    actions = ["revoke_selected", "rotate_secret", "reset_rate_limits"]
    readonly_on_change = [
        "client_id",
        "client_type",
        "status_badge",
        "rate_limit_state",
        "previous_secret_expires_at",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
        "revoked_by",
        "revoked_reason",
    ]
    issued_title = _("OAuth application registered")
    issued_template = "admin/apiauth/application/issued.html"
    renew_url = "rotate"
    renew_action = "rotate_secret"
    renew_label = _("Rotate secret…")
    rotated_title = _("Client secret rotated")

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(ApplicationForm.Meta.fields)
        if obj is None:
            return [(None, {"fields": [*fields, "form_token"]})]
        return [
            # The client type is fixed at creation (a secret was issued, or not): shown below.
            (None, {"fields": [f for f in fields if f not in self.readonly_on_change]}),
            (_("Identity and lifecycle"), {"fields": self.readonly_on_change}),
        ]

    @admin.display(description=_("client id"), ordering="client_id")
    def client(self, obj: Application) -> str:
        return format_html("<code>{}</code>", obj.client_id)

    @admin.display(description=_("type"), ordering="client_type")
    def kind(self, obj: Application) -> str:
        """Public or confidential, and first party (no consent asked) when it is."""
        if obj.first_party:
            return format_html("{}<br><small>{}</small>", obj.client_type, _("first party"))
        return obj.client_type

    def rotation_refused(self, obj: Application) -> str | None:
        return None if obj.confidential else str(_("A public client has no secret."))

    @admin.action(
        description=_("Rotate the selected application's secret…"), permissions=["change"]
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        return super().rotate_secret(request, queryset)


@admin.register(Consent)
class ConsentAdmin(AuditedAdmin):
    """What people authorized: end one, or sign a person out everywhere."""

    list_display = ["user", "application", "scope_list", "created_at", "updated_at", "revoked_at"]
    list_select_related = ["user", "application"]
    list_filter = ["application"]
    search_fields = ["user__username", "=application__client_id", "application__name"]
    actions = ["end_selected", "sign_out_everywhere"]
    readonly_fields = ["user", "application", "scopes", "created_at", "updated_at", "revoked_at"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: Consent) -> str:
        return " ".join(obj.scopes) or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(
        description=_("End the selected authorizations (and their tokens)"),
        permissions=["change"],
    )
    def end_selected(self, request: HttpRequest, queryset: QuerySet[Consent]) -> None:
        ended = 0
        for consent in queryset.filter(revoked_at__isnull=True):
            authorization.end_authorization(
                consent.application, consent.user, reason="ended in the admin"
            )
            self.audit(request, "revoke", consent)
            ended += 1
        self.message_user(
            request,
            ngettext("Ended %(count)d authorization.", "Ended %(count)d authorizations.", ended)
            % {"count": ended},
            messages.SUCCESS,
        )

    @admin.action(description=_("Sign the selected people out everywhere"), permissions=["change"])
    def sign_out_everywhere(self, request: HttpRequest, queryset: QuerySet[Consent]) -> None:
        users = {consent.user_id: consent for consent in queryset.select_related("user")}
        for consent in users.values():
            authorization.sign_out_everywhere(consent.user)
            self.audit(request, "sign_out", consent, reason="every token of the person")
        self.message_user(
            request,
            ngettext(
                "Signed %(count)d person out everywhere.",
                "Signed %(count)d people out everywhere.",
                len(users),
            )
            % {"count": len(users)},
            messages.SUCCESS,
        )
