"""The audit trail in the admin: read-only, for everyone who may see it."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apiauth.admin.audited import moment
from apiauth.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    class Media:
        css = {"all": ["apiauth/admin.css"]}

    list_display = ["when", "action", "credential", "actor_repr", "client_ip", "short_reason"]
    list_filter = ["action", "credential_kind"]
    search_fields = ["=credential_id", "actor_repr"]
    date_hierarchy = "created_at"

    @admin.display(description=_("when"), ordering="created_at")
    def when(self, obj: AuditEvent) -> str:
        return moment(obj.created_at, "seconds")

    @admin.display(description=_("credential"), ordering="credential_id")
    def credential(self, obj: AuditEvent) -> str:
        return format_html("{} <code>{}</code>", obj.credential_kind, obj.credential_id)

    @admin.display(description=_("reason"))
    def short_reason(self, obj: AuditEvent) -> str:
        """The first words of the reason (all of it on the event's page)."""
        if len(obj.reason) <= 60:
            return obj.reason or "—"
        return format_html('<span title="{}">{}…</span>', obj.reason, obj.reason[:57])

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
