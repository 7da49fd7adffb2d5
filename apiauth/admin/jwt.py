"""Our side of JWTs in the admin: signing keys (generate, promote, retire, revoke) and
refresh-token families (read, revoke with their access tokens)."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
)
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apiauth import tokens
from apiauth.admin.audited import moment
from apiauth.admin.base import AuditedAdmin
from apiauth.forms import RevokeForm, SigningKeyForm
from apiauth.models import SigningKey, TokenFamily
from apiauth.store import StoreUnavailable


@admin.register(SigningKey)
class SigningKeyAdmin(AuditedAdmin):
    """Generate (the add form), promote, retire and revoke; each audited. Keys are never
    edited nor deleted: revoke one instead (deleting would break the tokens it signed)."""

    form = SigningKeyForm
    change_form_template = "admin/apiauth/signingkey/change_form.html"
    revoke_template = "admin/apiauth/signingkey/revoke_confirmation.html"
    steps = {"promote": "promote_key", "retire": "retire_keys", "revoke": "revoke_selected"}
    """The buttons of a key's page (``<id>/<step>/``) and the action each runs."""
    list_display = ["short_kid", "algorithm", "key_size", "state", "created", "activated"]
    list_filter = ["state", "algorithm"]
    search_fields = ["=kid"]
    ordering = ["-created_at"]
    actions = ["promote_key", "retire_keys", "revoke_selected"]
    fields = ("algorithm", "key_size")
    readonly_on_change = (
        "kid",
        "algorithm",
        "key_size",
        "state",
        "public_key",
        "created_at",
        "activated_at",
        "retired_at",
        "revoked_at",
        "reason",
    )

    @admin.display(description=_("key id"), ordering="kid")
    def short_kid(self, obj: SigningKey) -> str:
        """The RFC 7638 thumbprint's first characters (the whole one on the key's page)."""
        return format_html('<code title="{}">{}…</code>', obj.kid, obj.kid[:12])

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: SigningKey) -> str:
        return moment(obj.created_at)

    @admin.display(description=_("activated"), ordering="activated_at")
    def activated(self, obj: SigningKey) -> str:
        return moment(obj.activated_at)

    def get_fields(self, request: HttpRequest, obj: SigningKey | None = None) -> Any:
        return self.readonly_on_change if obj is not None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: SigningKey | None = None) -> Any:
        return self.readonly_on_change if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SigningKey, form: Any, change: bool) -> None:
        if change:
            raise PermissionDenied  # signing keys are never edited
        generated = SigningKey.objects.generate(obj.algorithm, obj.key_size or None)
        obj.__dict__.update(generated.__dict__)
        self.audit(request, "issue", obj)

    @admin.action(description=_("Promote the selected key to active"), permissions=["change"])
    def promote_key(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        keys = list(queryset)
        if len(keys) != 1:
            self.message_user(request, _("Select exactly one key to promote."), messages.ERROR)
            return
        try:
            with transaction.atomic():
                retired = SigningKey.objects.promote(keys[0])
        except ValueError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        if retired is not None:
            self.audit(request, "retire", retired, reason="replaced by a promotion")
        self.audit(request, "promote", keys[0], reason="")
        self.message_user(request, _("Promoted %(kid)s.") % {"kid": keys[0].kid}, messages.SUCCESS)

    @admin.action(description=_("Retire the selected next keys"), permissions=["change"])
    def retire_keys(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        for key in queryset:
            try:
                SigningKey.objects.retire(key)
            except ValueError as exc:
                self.message_user(request, f"{key.kid}: {exc}", messages.ERROR)
                continue
            self.audit(request, "retire", key, reason="")
            self.message_user(request, _("Retired %(kid)s.") % {"kid": key.kid}, messages.SUCCESS)

    @admin.action(
        description=_("Revoke the selected keys (never verify again)…"), permissions=["change"]
    )
    def revoke_selected(
        self, request: HttpRequest, queryset: QuerySet[SigningKey]
    ) -> HttpResponse | None:
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            title = _("Revoke signing keys")
            return self.render_action_page(
                request, queryset, "revoke_selected", form, self.revoke_template, title
            )
        reason = form.cleaned_data["reason"]
        for key in queryset:
            if SigningKey.objects.revoke(key, reason):
                self.audit(request, "revoke", key, reason=reason)
                self.message_user(
                    request, _("Revoked %(kid)s.") % {"kid": key.kid}, messages.SUCCESS
                )
        return None

    # One key's page: what can happen to it, instead of Save -----------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            *(
                path(
                    f"<path:object_id>/{step}/",
                    wrap(partial(self.step_view, action=action)),
                    name=f"{prefix}_{step}",
                )
                for step, action in self.steps.items()
            ),
            *super().get_urls(),
        ]

    def step_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        """A button of the key's page: promote or retire it (POST), or revoke it (after a
        confirmation page asking why); then back to the page."""
        queryset = self.one(request, object_id)  # pragma: no mutate (Django reads no request)
        key = queryset[0]
        if not self.has_change_permission(request, key):  # pragma: no mutate (Django's: no obj)
            raise PermissionDenied
        if request.method != "POST" and action != "revoke_selected":
            return HttpResponseNotAllowed(["POST"])
        return getattr(self, action)(request, queryset) or self.back_to(key)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Django's get_object reads no request, its has_change_permission no object.
        key = self.get_object(request, unquote(object_id))  # pragma: no mutate
        allowed = key is not None and self.has_change_permission(request, key)  # pragma: no mutate
        state = key.state if key is not None else None
        extra_context = {
            **(extra_context or {}),
            "can_promote": allowed and state in ("next", "retired"),
            "can_retire": allowed and state == "next",
            "can_revoke": allowed and state != "revoked",
        }
        # form_url: Django omits the form's action for "" and None alike.
        return super().change_view(request, object_id, form_url, extra_context)  # pragma: no mutate


class FamilyRevokedFilter(admin.SimpleListFilter):
    title = _("revoked")
    parameter_name = "revoked"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("no", _("Not revoked")), ("yes", _("Revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value in ("yes", "no"):
            return queryset.filter(revoked_at__isnull=value == "no")
        return queryset


@admin.register(TokenFamily)
class TokenFamilyAdmin(AuditedAdmin):
    """Refresh-token families: read-only, revocable (with their access tokens)."""

    list_display = ["short_id", "issued_to", "person", "scope_list", "status", "created"]
    list_select_related = ["api_key", "application", "user"]
    list_filter = [FamilyRevokedFilter]
    search_fields = ["=api_key__public_id", "=application__client_id", "=id"]
    ordering = ["-created_at"]
    actions = ["revoke_families"]
    readonly_fields = [
        "id",
        "issued_to",
        "person",
        "scope_list",
        "status",
        "created_at",
        "refreshed_at",
        "expires_at",
        "revoked_at",
        "revoked_reason",
    ]
    fields = tuple(readonly_fields)

    @admin.display(description=_("family"), ordering="id")
    def short_id(self, obj: TokenFamily) -> str:
        return format_html('<code title="{}">{}</code>', obj.id, str(obj.id)[:8])

    @admin.display(description=_("issued to"))
    def issued_to(self, obj: TokenFamily) -> str:
        """The API key or the application, linked to its page."""
        client = obj.client
        name = f"admin:{client._meta.app_label}_{client._meta.model_name}_change"
        url = reverse(name, args=[client.pk], current_app=self.admin_site.name)
        return format_html(
            '<a href="{}">{}</a> (<code>{}</code>)', url, client.name, client.public_id
        )

    @admin.display(description=_("created"), ordering="created_at")
    def created(self, obj: TokenFamily) -> str:
        return moment(obj.created_at)

    @admin.display(description=_("person"), ordering="user")
    def person(self, obj: TokenFamily) -> str:
        return str(obj.user) if obj.user_id is not None else "—"

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: TokenFamily) -> str:
        return " ".join(obj.scopes) or "—"

    @admin.display(description=_("status"), ordering="expires_at")
    def status(self, obj: TokenFamily) -> str:
        """Live (until when), revoked (the family itself), or ended (expired, or its client or
        person revoked or deactivated)."""
        if obj.revoked_at is not None:
            return str(_("revoked"))
        if not obj.is_live:
            return str(_("ended"))
        return format_html(
            "{}<br><small>{} {}</small>", _("live"), _("until"), moment(obj.expires_at, "date")
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        # Nothing on the page is edited: no Save buttons (revoke from the list).
        extra_context = {
            **(extra_context or {}),
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        # form_url: Django omits the form's action for "" and None alike.
        return super().change_view(request, object_id, form_url, extra_context)  # pragma: no mutate

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: TokenFamily | None = None) -> bool:
        return False

    @admin.action(
        description=_("Revoke the selected families and their tokens"), permissions=["change"]
    )
    def revoke_families(self, request: HttpRequest, queryset: QuerySet[TokenFamily]) -> None:
        revoked = 0
        for family in queryset.select_related("api_key"):
            try:
                ended = tokens.revoke_family(family, reason="revoked in the admin")
            except StoreUnavailable:
                self.message_user(
                    request,
                    _("Redis is unavailable: the family's access tokens were not revoked."),
                    messages.ERROR,
                )
                return
            if ended:
                self.audit(request, "revoke", family)
                revoked += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)d family.", "Revoked %(count)d families.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )
