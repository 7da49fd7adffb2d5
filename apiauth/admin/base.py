"""What every credential admin shares: its nouns, templates and renewing action as class
attributes over the actions of :mod:`apiauth.admin.actions` and the audit trail of
:mod:`apiauth.admin.audited`.

A new secret travels from ``save_model`` (or the renewing action) to the response on the
request object only: never through the messages framework (cookie storage) or the session,
and it is rendered once, in the response to the action that created it.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from apiauth.admin.actions import CredentialActions
from apiauth.admin.audited import AuditedAdmin, moment
from apiauth.conf import conf
from apiauth.forms import default_plan_label
from apiauth.models import AbstractCredential, RevokedCredential, may_act_as
from apiauth.throttling.limiter import credential_state

SECRET_ATTR = "_apiauth_new_raw_key"

__all__ = ["AuditedAdmin", "CredentialAdmin", "PlanFilter", "StatusFilter"]


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("Active")), ("expired", _("Expired")), ("revoked", _("Revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value == "active":
            return queryset.usable()  # type: ignore[attr-defined,no-any-return]
        if value == "expired":
            return queryset.expired()  # type: ignore[attr-defined,no-any-return]
        if value == "revoked":
            return queryset.revoked()  # type: ignore[attr-defined,no-any-return]
        return queryset


class PlanFilter(admin.SimpleListFilter):
    """The plans of ``APIAUTH["PLANS"]``, and the keys on the default plan (blank)."""

    title = _("plan")
    parameter_name = "plan"
    default_value = "__default__"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        plans = ((name, name) for name in sorted(conf.PLANS))
        return [(self.default_value, default_plan_label()), *plans]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(plan="" if value == self.default_value else value)


class CredentialAdmin(CredentialActions):
    """Issue (the secret shown once, on the response page), edit, revoke with a reason,
    renew (an API key is *rolled*, an HMAC secret *rotated*: ``renew_*`` name it), and reset
    the rate limits. Subclasses name their model's fields, templates and renewing action."""

    change_form_template = "admin/apiauth/credential/change_form.html"
    issued_title: Any
    renew_url: str
    """The change page's renew button: ``<id>/<renew_url>/`` runs :attr:`renew_action`."""
    renew_action: str
    renew_label: Any
    list_select_related = ["owner"]
    ordering = ["-created_at"]
    date_hierarchy = "created_at"
    raw_id_fields = ["owner"]
    readonly_on_change: list[str] = []

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [StatusFilter, PlanFilter, ("owner", admin.RelatedOnlyFieldListFilter)]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: AbstractCredential) -> str:
        return " ".join(obj.scopes) or "—"

    @admin.display(description=_("last used"), ordering="last_used_at")
    def last_used(self, obj: AbstractCredential) -> str:
        return moment(obj.last_used_at, "date")

    @admin.display(description=_("status"), ordering="expires_at")
    def status_badge(self, obj: AbstractCredential) -> str:
        """The status, and under it when an expiring credential ends (or ended)."""
        colours = {"active": "#2e7d32", "expired": "#8a6d00", "revoked": "#b71c1c"}
        badge = format_html('<strong style="color:{}">{}</strong>', colours[obj.status], obj.status)
        if obj.expires_at is None or obj.status == "revoked":
            return badge
        return format_html(
            "{}<br><small>{} {}</small>", badge, _("until"), moment(obj.expires_at, "date")
        )

    @admin.display(description=_("rate limits now"))
    def rate_limit_state(self, obj: AbstractCredential) -> str:
        credential = obj.to_credential()
        decision, error = credential_state(credential)
        if error is not None:
            return str(_("Unavailable: the rate-limit store cannot be reached."))
        if decision is None:
            return str(_("No limits: the key has no plan and there is no default plan."))
        rows = format_html_join(
            "",
            "<li>{}: {} of {} left, whole again in {} s</li>",
            (
                (s.limit.name, max(0, s.remaining), s.limit.capacity, -(-s.reset_us // 1_000_000))
                for s in decision.states
            ),
        )
        return format_html(
            "{} <strong>{}</strong><ul>{}</ul>",
            _("Plan"),
            credential.plan or _("none"),
            rows,
        )

    # Forms and permissions ---------------------------------------------------------------

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = list(self.form.Meta.fields)  # type: ignore[attr-defined]
        if obj is None:
            return [(None, {"fields": [*fields, "form_token"]})]
        return [
            (None, {"fields": fields}),
            (_("Identity and lifecycle"), {"fields": self.readonly_on_change}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_on_change

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A revoked credential is frozen, and one acting as someone the user may not act as
        # (a superuser's, for staff) is not theirs to widen or renew: both pages are view-only.
        if obj is not None and (obj.is_revoked or not may_act_as(request.user, obj.owner)):
            return False
        # Django's own reads only request.user.
        return super().has_change_permission(request, obj)  # pragma: no mutate

    def has_revoke_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Revoking only takes reach away: the change permission is enough, whoever the owner."""
        # Django's own reads only request.user.
        allowed = super().has_change_permission(request, obj)  # pragma: no mutate
        return allowed and not (obj and obj.is_revoked)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Revocation keeps the record and the audit trail; deleting is for superusers only.
        # Django's own reads only request.user.
        allowed = super().has_delete_permission(request, obj)  # pragma: no mutate
        return bool(request.user.is_superuser) and allowed

    # Saving ------------------------------------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: Any, form: ModelForm[Any], change: bool
    ) -> None:
        if change:
            try:
                # Django's own is obj.save().
                super().save_model(request, obj, form, change)  # pragma: no mutate
            except RevokedCredential:
                # Revoked between the form's check and the conditional UPDATE (the 403 page
                # says no more than that).
                raise PermissionDenied from None
            self.audit(request, "update", obj, fields=sorted(form.changed_data))
            return
        setattr(request, SECRET_ATTR, obj.assign_new_secret())
        obj.created_by = request.user
        obj.idempotency_key = form.cleaned_data["form_token"]
        try:
            with transaction.atomic():
                # Django's own is obj.save().
                super().save_model(request, obj, form, change)  # pragma: no mutate
        except IntegrityError:
            # The same form submitted twice at once: the other submission issued it.
            raise PermissionDenied from None
        self.audit(request, "issue", obj)

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(request, SECRET_ATTR, None)
        if secret is None:  # pragma: no cover - save_model always sets it for a new one
            return super().response_add(request, obj, post_url_continue)
        return self.render_secret(request, obj, secret, self.issued_title)

    # One credential's Revoke and renew buttons (change page) -----------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/revoke/", wrap(self.revoke_view), name=f"{prefix}_revoke"),
            path(
                f"<path:object_id>/{self.renew_url}/",
                wrap(self.renew_view),
                name=f"{prefix}_{self.renew_url}",
            ),
            *super().get_urls(),
        ]

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        queryset = self.one(request, object_id)
        if not self.has_revoke_permission(request, queryset[0]):
            raise PermissionDenied
        return self.revoke_selected(request, queryset) or self.back_to(queryset[0])

    def renew_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        queryset = self.one(request, object_id)
        if not self.has_change_permission(request, queryset[0]):
            raise PermissionDenied
        action = getattr(self, self.renew_action)
        return action(request, queryset) or self.back_to(queryset[0])

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        obj = self.get_object(request, unquote(object_id))
        # "Save as new" turns this page into an add form (Django honours it even without
        # save_as): no buttons for an object that does not exist yet.
        existing = obj is not None and "_saveasnew" not in request.POST
        extra_context = {
            **(extra_context or {}),
            "can_revoke": existing and self.has_revoke_permission(request, obj),
            "can_renew": existing and self.has_change_permission(request, obj),
            "renew_url": self.renew_url,
            "renew_label": self.renew_label,
        }
        # form_url: Django omits the form's action for "" and None alike.
        return super().change_view(request, object_id, form_url, extra_context)  # pragma: no mutate
