"""Admin screens: issue, roll and revoke keys; read the audit trail.

A new raw key travels from ``save_model`` (or the roll action) to the response on the request
object only: never through the messages framework (cookie storage) or the session, and it is
rendered once, in the response to the action that created it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apiauth import audit, tokens
from apiauth.conf import conf
from apiauth.forms import (
    APIKeyForm,
    HMACCredentialForm,
    RevokeForm,
    RollForm,
    RotateForm,
    SigningKeyForm,
    default_plan_label,
)
from apiauth.models import (
    AlreadyRolled,
    APIKey,
    AuditEvent,
    HMACCredential,
    RevokedCredential,
    SigningKey,
    TokenFamily,
    may_act_as,
)
from apiauth.net import get_client_ip
from apiauth.store import StoreUnavailable
from apiauth.throttling.limiter import credential_state, reset_credential

RAW_KEY_ATTR = "_apiauth_new_raw_key"

if TYPE_CHECKING:
    APIKeyModelAdmin = admin.ModelAdmin[APIKey]
    AuditEventModelAdmin = admin.ModelAdmin[AuditEvent]
    SigningKeyModelAdmin = admin.ModelAdmin[SigningKey]
    TokenFamilyModelAdmin = admin.ModelAdmin[TokenFamily]
else:  # Django's classes are not subscriptable at run time.
    APIKeyModelAdmin = AuditEventModelAdmin = admin.ModelAdmin
    SigningKeyModelAdmin = TokenFamilyModelAdmin = admin.ModelAdmin


class StatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return [("active", _("Active")), ("expired", _("Expired")), ("revoked", _("Revoked"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        value = self.value()
        if value == "active":
            return queryset.usable()  # type: ignore[attr-defined, no-any-return]
        if value == "expired":
            return queryset.expired()  # type: ignore[attr-defined, no-any-return]
        if value == "revoked":
            return queryset.revoked()  # type: ignore[attr-defined, no-any-return]
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


@admin.register(APIKey)
class APIKeyAdmin(APIKeyModelAdmin):
    form = APIKeyForm
    change_form_template = "admin/apiauth/apikey/change_form.html"
    list_display = [
        "name",
        "public_id",
        "owner",
        "scope_list",
        "status_badge",
        "last_used_at",
        "expires_at",
    ]
    list_filter = [StatusFilter, PlanFilter, ("owner", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["owner"]
    search_fields = ["name", "=public_id", f"owner__{get_user_model().USERNAME_FIELD}"]
    ordering = ["-created_at"]
    date_hierarchy = "created_at"
    actions = ["revoke_keys", "roll_key", "reset_rate_limits"]
    raw_id_fields = ["owner"]
    add_fieldsets = [(None, {"fields": APIKeyForm.Meta.fields})]
    readonly_on_change = [
        "public_id",
        "status_badge",
        "rate_limit_state",
        "token_families",
        "lineage",
        "rolled_from",
        "created_at",
        "created_by",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "revoked_by",
        "revoked_reason",
    ]

    @admin.display(description=_("live token families"))
    def token_families(self, obj: APIKey) -> str:
        """The key's live refresh-token families, each linking to its page (revoke it there)."""
        families = TokenFamily.objects.live().filter(api_key=obj)[:50]
        if not families:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{}</a> {} · {}',
            (
                (
                    reverse("admin:apiauth_tokenfamily_change", args=[family.pk]),
                    str(family.pk)[:8],
                    " ".join(family.scopes) or "—",
                    family.created_at.strftime("%Y-%m-%d %H:%M"),
                )
                for family in families
            ),
        )

    @admin.display(description=_("scopes"))
    def scope_list(self, obj: APIKey) -> str:
        return " ".join(obj.scopes) or "—"

    @admin.display(description=_("status"))
    def status_badge(self, obj: APIKey) -> str:
        colours = {"active": "#2e7d32", "expired": "#8a6d00", "revoked": "#b71c1c"}
        return format_html('<strong style="color:{}">{}</strong>', colours[obj.status], obj.status)

    @admin.display(description=_("rate limits now"))
    def rate_limit_state(self, obj: APIKey) -> str:
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
        self, request: HttpRequest, obj: APIKey | None = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_fieldsets(self, request: HttpRequest, obj: APIKey | None = None) -> Any:
        if obj is None:
            return [(None, {"fields": [*APIKeyForm.Meta.fields, "form_token"]})]
        return [
            (None, {"fields": APIKeyForm.Meta.fields}),
            (_("Identity and lifecycle"), {"fields": self.readonly_on_change}),
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: APIKey | None = None) -> Any:
        return [] if obj is None else self.readonly_on_change

    def has_change_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        # A revoked key is frozen, and a key acting as someone the user may not act as
        # (a superuser's, for staff) is not theirs to widen or roll: both pages are view-only.
        if obj is not None and (obj.is_revoked or not may_act_as(request.user, obj.owner)):
            return False
        return super().has_change_permission(request, obj)

    def has_revoke_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        """Revoking only takes reach away: the change permission is enough, whoever the owner."""
        return super().has_change_permission(request, obj) and not (obj and obj.is_revoked)

    def has_delete_permission(self, request: HttpRequest, obj: APIKey | None = None) -> bool:
        # Revocation keeps the record and the audit trail; deleting is for superusers only.
        return bool(request.user.is_superuser) and super().has_delete_permission(request, obj)

    # Saving ------------------------------------------------------------------------------

    def save_model(
        self, request: HttpRequest, obj: APIKey, form: ModelForm[APIKey], change: bool
    ) -> None:
        if change:
            try:
                super().save_model(request, obj, form, change)
            except RevokedCredential:
                # Revoked between the form's check and the conditional UPDATE.
                raise PermissionDenied("This key was revoked meanwhile.") from None
            audit.record(
                "update",
                obj,
                actor=request.user,
                client_ip=get_client_ip(request),
                fields=sorted(form.changed_data),
            )
            return
        setattr(request, RAW_KEY_ATTR, self.assign_secret(obj))
        obj.created_by = request.user  # type: ignore[assignment]
        obj.idempotency_key = form.cleaned_data["form_token"]
        try:
            with transaction.atomic():
                super().save_model(request, obj, form, change)
        except IntegrityError:
            # The same form submitted twice at once: the other submission issued the key.
            raise PermissionDenied("This form was already submitted.") from None
        audit.record("issue", obj, actor=request.user, client_ip=get_client_ip(request))

    def assign_secret(self, obj: Any) -> str:
        """Give the new credential its secret; returns it (shown once, never stored)."""
        return str(obj.assign_new_key())

    issued_title = _("API key issued")
    issued_template = "admin/apiauth/apikey/key_issued.html"

    def response_add(
        self, request: HttpRequest, obj: APIKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        raw = getattr(request, RAW_KEY_ATTR, None)
        if raw is None:  # pragma: no cover - save_model always sets it for a new key
            return super().response_add(request, obj, post_url_continue)
        return self.render_key_issued(request, obj, raw, self.issued_title)

    def render_key_issued(
        self, request: HttpRequest, obj: APIKey, raw: str, title: Any
    ) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "key": obj,
            "raw_key": raw,
        }
        response = TemplateResponse(request, self.issued_template, context)
        response["Cache-Control"] = "no-store"
        return response

    def delete_model(self, request: HttpRequest, obj: APIKey) -> None:
        # The pre_delete receiver writes the audit row; this names who did it.
        with audit.acting(request.user, get_client_ip(request)):
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        with audit.acting(request.user, get_client_ip(request)):
            super().delete_queryset(request, queryset)

    # One key's Revoke and Roll buttons (change page) ------------------------------------

    def get_urls(self) -> list[URLPattern]:
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/revoke/", wrap(self.revoke_view), name=f"{prefix}_revoke"),
            path("<path:object_id>/roll/", wrap(self.roll_view), name=f"{prefix}_roll"),
            *super().get_urls(),
        ]

    def _one(self, request: HttpRequest, object_id: str) -> QuerySet[APIKey]:
        # get_object answers None for an id that is not one (``abc``, ``1.5``) as for a missing one.
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404
        return self.get_queryset(request).filter(pk=obj.pk)

    def revoke_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        queryset = self._one(request, object_id)
        if not self.has_revoke_permission(request, queryset[0]):
            raise PermissionDenied
        return self.revoke_keys(request, queryset) or self._back_to(queryset[0])

    def roll_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        queryset = self._one(request, object_id)
        if not self.has_change_permission(request, queryset[0]):
            raise PermissionDenied
        return self.roll_key(request, queryset) or self._back_to(queryset[0])

    def _back_to(self, key: APIKey) -> HttpResponse:
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        return HttpResponseRedirect(reverse(name, args=[key.pk], current_app=self.admin_site.name))

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
            "can_roll": existing and self.has_change_permission(request, obj),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    # Actions -----------------------------------------------------------------------------

    @admin.action(description=_("Revoke selected keys…"), permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponse | None:
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            revoked = 0
            for key in queryset:
                if key.revoke(by=request.user, reason=reason):
                    audit.record(
                        "revoke",
                        key,
                        actor=request.user,
                        client_ip=get_client_ip(request),
                        reason=reason,
                    )
                    revoked += 1
            skipped = len(queryset) - revoked
            self.message_user(
                request,
                ngettext("Revoked %(count)d key.", "Revoked %(count)d keys.", revoked)
                % {"count": revoked},
                messages.SUCCESS,
            )
            if skipped:
                self.message_user(
                    request,
                    ngettext(
                        "%(count)d key was already revoked.",
                        "%(count)d keys were already revoked.",
                        skipped,
                    )
                    % {"count": skipped},
                    messages.WARNING,
                )
            return None
        return self.render_action_page(
            request,
            queryset,
            "revoke_keys",
            form,
            "admin/apiauth/apikey/revoke_confirmation.html",
            _("Revoke API keys"),
        )

    @admin.action(description=_("Roll selected key…"), permissions=["change"])
    def roll_key(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponse | None:
        keys = list(queryset)
        if len(keys) != 1 or keys[0].is_revoked:
            self.message_user(
                request, _("Select exactly one key that is not revoked to roll."), messages.ERROR
            )
            return None
        key = keys[0]
        if not may_act_as(request.user, key.owner):
            self.message_user(
                request,
                _("You may not roll a key acting as %(owner)s.") % {"owner": key.owner},
                messages.ERROR,
            )
            return None
        form = RollForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                new, raw = APIKey.objects.roll(key, form.grace_period, by=request.user)
            except AlreadyRolled as exc:
                # A second roll, or the result page refreshed: the secret is not shown again.
                self.message_user(
                    request,
                    _(
                        "This key was already rolled to %(public_id)s, whose secret was shown "
                        "once. Roll that key to get another."
                    )
                    % {"public_id": getattr(exc.successor, "public_id", "?")},
                    messages.ERROR,
                )
                return None
            except ValidationError as exc:
                # The successor must be valid today: a plan since removed from settings, or
                # scopes a registry added since does not know, are fixed on the key first.
                problems = "; ".join(" ".join(errors) for errors in exc.message_dict.values())
                self.message_user(
                    request,
                    _("This key cannot be rolled as it is: %(problems)s Edit it first.")
                    % {"problems": problems},
                    messages.ERROR,
                )
                return None
            ip = get_client_ip(request)
            audit.record(
                "roll",
                key,
                actor=request.user,
                client_ip=ip,
                new_public_id=new.public_id,
                grace_seconds=form.cleaned_data["grace"],
            )
            audit.record("issue", new, actor=request.user, client_ip=ip, rolled_from=key.public_id)
            return self.render_key_issued(request, new, raw, _("API key rolled"))
        return self.render_action_page(
            request,
            queryset,
            "roll_key",
            form,
            "admin/apiauth/apikey/roll_confirmation.html",
            _("Roll API key"),
        )

    @admin.action(description=_("Reset rate-limit buckets"), permissions=["change"])
    def reset_rate_limits(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> None:
        done = 0
        for key in queryset:
            if not self.has_change_permission(request, key):
                # A key this operator may only view (a superuser's, for staff): its usage is
                # not theirs to wipe.
                self.message_user(
                    request,
                    _("Skipped %(public_id)s: you may not change it.")
                    % {"public_id": key.public_id},
                    messages.WARNING,
                )
                continue
            try:
                deleted = reset_credential(key.to_credential())
            except StoreUnavailable:
                self.message_user(
                    request, _("The rate-limit store cannot be reached."), messages.ERROR
                )
                return
            audit.record(
                "reset_limits",
                key,
                actor=request.user,
                client_ip=get_client_ip(request),
                reason="buckets and quotas only; revocations and cached versions kept",
                deleted=deleted,
            )
            done += 1
        self.message_user(
            request,
            ngettext(
                "Reset the rate limits of %(count)d key (and its lineage).",
                "Reset the rate limits of %(count)d keys (and their lineages).",
                done,
            )
            % {"count": done},
            messages.SUCCESS,
        )

    def render_action_page(
        self,
        request: HttpRequest,
        queryset: QuerySet[APIKey],
        action: str,
        form: Any,
        template: str,
        title: Any,
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "queryset": queryset,
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, template, context)


@admin.register(HMACCredential)
class HMACCredentialAdmin(APIKeyAdmin):
    """As for keys: issue (the secret shown once, on the response page), revoke with a reason,
    and rotate the secret (the previous one verifies for a grace period) instead of rolling."""

    form = HMACCredentialForm
    change_form_template = "admin/apiauth/hmaccredential/change_form.html"
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
    actions = ["revoke_keys", "roll_key", "reset_rate_limits"]
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

    def assign_secret(self, obj: Any) -> str:
        return str(obj.assign_new_secret())

    @admin.action(description=_("Rotate the selected credential's secret…"), permissions=["change"])
    def roll_key(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        credentials = list(queryset)
        if len(credentials) != 1 or credentials[0].is_revoked:
            self.message_user(
                request,
                _("Select exactly one credential that is not revoked to rotate."),
                messages.ERROR,
            )
            return None
        credential = credentials[0]
        if not may_act_as(request.user, credential.owner):
            raise PermissionDenied
        form = RotateForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            try:
                secret = HMACCredential.objects.rotate_secret(
                    credential, form.grace_period, by=request.user
                )
            except RevokedCredential:
                raise PermissionDenied("This credential was revoked meanwhile.") from None
            audit.record(
                "rotate",
                credential,
                actor=request.user,
                client_ip=get_client_ip(request),
                grace_seconds=form.cleaned_data["grace"],
            )
            return self.render_key_issued(
                request, credential, secret, _("HMAC credential secret rotated")
            )
        return self.render_action_page(
            request,
            queryset,
            "roll_key",
            form,
            "admin/apiauth/hmaccredential/rotate_confirmation.html",
            _("Rotate the secret"),
        )


@admin.register(SigningKey)
class SigningKeyAdmin(SigningKeyModelAdmin):
    """Generate (the add form), promote, retire and revoke; each audited. Keys are never
    edited nor deleted: revoke one instead (deleting would break the tokens it signed)."""

    form = SigningKeyForm
    list_display = ["kid", "algorithm", "key_size", "state", "created_at", "activated_at"]
    list_filter = ["state", "algorithm"]
    search_fields = ["=kid"]
    ordering = ["-created_at"]
    actions = ["promote_key", "retire_keys", "revoke_keys"]
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

    def get_fields(self, request: HttpRequest, obj: SigningKey | None = None) -> Any:
        return self.readonly_on_change if obj is not None else self.fields

    def get_readonly_fields(self, request: HttpRequest, obj: SigningKey | None = None) -> Any:
        return self.readonly_on_change if obj is not None else ()

    def has_delete_permission(self, request: HttpRequest, obj: SigningKey | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: SigningKey, form: Any, change: bool) -> None:
        if change:
            raise PermissionDenied("Signing keys are not edited.")
        generated = SigningKey.objects.generate(obj.algorithm, obj.key_size or None)
        obj.__dict__.update(generated.__dict__)
        audit.record("issue", obj, actor=request.user, client_ip=get_client_ip(request))

    def _audit(self, request: HttpRequest, action: str, key: SigningKey, reason: str = "") -> None:
        audit.record(
            action, key, actor=request.user, client_ip=get_client_ip(request), reason=reason
        )

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
            self._audit(request, "retire", retired, "replaced by a promotion")
        self._audit(request, "promote", keys[0])
        self.message_user(request, _("Promoted %(kid)s.") % {"kid": keys[0].kid}, messages.SUCCESS)

    @admin.action(description=_("Retire the selected next keys"), permissions=["change"])
    def retire_keys(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        for key in queryset:
            try:
                SigningKey.objects.retire(key)
            except ValueError as exc:
                self.message_user(request, f"{key.kid}: {exc}", messages.ERROR)
                continue
            self._audit(request, "retire", key)
            self.message_user(request, _("Retired %(kid)s.") % {"kid": key.kid}, messages.SUCCESS)

    @admin.action(
        description=_("Revoke the selected keys (never verify again)"), permissions=["change"]
    )
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[SigningKey]) -> None:
        reason = "revoked in the admin"
        for key in queryset:
            if SigningKey.objects.revoke(key, reason):
                self._audit(request, "revoke", key, reason)
                self.message_user(
                    request, _("Revoked %(kid)s.") % {"kid": key.kid}, messages.SUCCESS
                )


@admin.register(TokenFamily)
class TokenFamilyAdmin(TokenFamilyModelAdmin):
    """Refresh-token families: read-only, revocable (with their access tokens)."""

    list_display = [
        "id",
        "api_key",
        "scopes",
        "created_at",
        "refreshed_at",
        "expires_at",
        "revoked_at",
    ]
    list_select_related = ["api_key"]
    search_fields = ["=api_key__public_id", "=id"]
    ordering = ["-created_at"]
    actions = ["revoke_families"]

    def get_readonly_fields(
        self, request: HttpRequest, obj: TokenFamily | None = None
    ) -> list[str]:
        return [
            "id",
            "api_key",
            "scopes",
            "created_at",
            "refreshed_at",
            "expires_at",
            "revoked_at",
            "revoked_reason",
        ]

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
                audit.record("revoke", family, actor=request.user, client_ip=get_client_ip(request))
                revoked += 1
        self.message_user(
            request,
            ngettext("Revoked %(count)d family.", "Revoked %(count)d families.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )


@admin.register(AuditEvent)
class AuditEventAdmin(AuditEventModelAdmin):
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
