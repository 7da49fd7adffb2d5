"""The audit trail in the admin: read-only, for everyone who may see it."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from apiauth.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = [
        "created_at",
        "action",
        "credential_kind",
        "credential_id",
        "actor_repr",
        "client_ip",
        "reason",
    ]
    list_filter = ["action", "credential_kind"]
    search_fields = ["=credential_id", "actor_repr"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
