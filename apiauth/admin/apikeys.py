"""API keys in the admin: issued with the key shown once, rolled to a successor, revoked."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from apiauth.admin.base import CredentialAdmin
from apiauth.forms import APIKeyForm, RollForm
from apiauth.models import AlreadyRolled, APIKey, TokenFamily, may_act_as


@admin.register(APIKey)
class APIKeyAdmin(CredentialAdmin):
    form = APIKeyForm
    list_display = [
        "name",
        "public_id",
        "owner",
        "scope_list",
        "status_badge",
        "last_used",
    ]
    search_fields = ["name", "=public_id", f"owner__{get_user_model().USERNAME_FIELD}"]
    actions = ["revoke_selected", "roll_key", "reset_rate_limits"]
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
    issued_title = _("API key issued")
    issued_template = "admin/apiauth/apikey/key_issued.html"
    renew_url = "roll"
    renew_action = "roll_key"
    renew_label = _("Roll…")

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

    @admin.action(description=_("Roll the selected key…"), permissions=["change"])
    def roll_key(self, request: HttpRequest, queryset: QuerySet[APIKey]) -> HttpResponse | None:
        key = self.renewable(request, queryset)
        if key is None:
            return None
        if not may_act_as(request.user, key.owner):
            self.message_user(
                request,
                _("You may not roll a key acting as %(owner)s.") % {"owner": key.owner},
                messages.ERROR,
            )
            return None
        form = RollForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self.render_action_page(
                request,
                queryset,
                "roll_key",
                form,
                "admin/apiauth/apikey/roll_confirmation.html",
                _("Roll API key"),
            )
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
        grace = form.cleaned_data["grace"]
        self.audit(request, "roll", key, new_public_id=new.public_id, grace_seconds=grace)
        self.audit(request, "issue", new, rolled_from=key.public_id)
        return self.render_secret(request, new, raw, _("API key rolled"))
