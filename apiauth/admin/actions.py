"""The actions on credentials: revoke with a reason, reset the rate limits, and for a
credential whose secret can be replaced in place, rotate it (the identifier stays, the previous
secret verifies for a grace period). The new secret is shown once, by :meth:`render_secret`.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from apiauth.admin.audited import AuditedAdmin
from apiauth.forms import RevokeForm, RotateForm
from apiauth.models import RevokedCredential, may_act_as
from apiauth.store import StoreUnavailable
from apiauth.throttling.limiter import reset_credential


class CredentialActions(AuditedAdmin):
    """What the list's actions and the change page's buttons run."""

    revoke_template = "admin/apiauth/credential/revoke_confirmation.html"
    issued_template: str

    def render_secret(
        self, request: HttpRequest, obj: Any, secret: str, title: Any
    ) -> HttpResponse:
        """The one page that shows a new secret: never cached, never shown again."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "key": obj,
            "raw_key": secret,
        }
        response = TemplateResponse(request, self.issued_template, context)
        response["Cache-Control"] = "no-store"  # pragma: no mutate (names: any case)
        return response

    def renewable(self, request: HttpRequest, queryset: QuerySet[Any]) -> Any:
        """The one credential a renewing action applies to, or ``None`` (with a message)."""
        selected = list(queryset)
        if len(selected) != 1 or selected[0].is_revoked:
            self.message_user(
                request,
                _("Select exactly one %(item)s that is not revoked.")
                % {"item": self.opts.verbose_name},
                messages.ERROR,
            )
            return None
        return selected[0]

    @admin.action(description=_("Revoke the selected credentials…"), permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        form = RevokeForm(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            revoked = 0
            for obj in queryset:
                if obj.revoke(by=request.user, reason=reason):
                    self.audit(request, "revoke", obj, reason=reason)
                    revoked += 1
            skipped = len(queryset) - revoked
            self.message_user(
                request,
                _("Revoked %(count)d %(items)s.")
                % {"count": revoked, "items": model_ngettext(self.opts, revoked)},
                messages.SUCCESS,
            )
            if skipped:
                self.message_user(
                    request,
                    _("%(count)d %(items)s already revoked.")
                    % {"count": skipped, "items": model_ngettext(self.opts, skipped)},
                    messages.WARNING,
                )
            return None
        title = _("Revoke %(items)s") % {"items": self.opts.verbose_name_plural}
        return self.render_action_page(
            request, queryset, "revoke_selected", form, self.revoke_template, title
        )

    @admin.action(description=_("Reset rate-limit buckets"), permissions=["change"])
    def reset_rate_limits(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        done = 0
        for obj in queryset:
            if not self.has_change_permission(request, obj):
                # One this operator may only view (a superuser's, for staff): its usage is
                # not theirs to wipe.
                self.message_user(
                    request,
                    _("Skipped %(public_id)s: you may not change it.")
                    % {"public_id": obj.public_id},
                    messages.WARNING,
                )
                continue
            try:
                deleted = reset_credential(obj.to_credential())
            except StoreUnavailable:
                self.message_user(
                    request, _("The rate-limit store cannot be reached."), messages.ERROR
                )
                return
            self.audit(
                request,
                "reset_limits",
                obj,
                reason="buckets and quotas only; revocations and cached versions kept",
                deleted=deleted,
            )
            done += 1
        self.message_user(
            request,
            _("Reset the rate limits of %(count)d %(items)s (and their lineages).")
            % {"count": done, "items": model_ngettext(self.opts, done)},
            messages.SUCCESS,
        )


class RotatesSecret(CredentialActions):
    """*Rotate*: a new secret for the same identifier, through the model manager's
    ``rotate_secret(obj, grace, by=…)``; the previous secret keeps verifying for the grace the
    operator chose."""

    rotate_template = "admin/apiauth/hmaccredential/rotate_confirmation.html"
    rotated_title: Any

    def rotation_refused(self, obj: Any) -> str | None:
        """Why ``obj`` has no secret to rotate, or ``None``."""
        return None

    @admin.action(description=_("Rotate the selected credential's secret…"), permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        obj = self.renewable(request, queryset)
        if obj is None:
            return None
        refused = self.rotation_refused(obj)
        if refused is not None:
            self.message_user(request, refused, messages.ERROR)
            return None
        if not may_act_as(request.user, obj.owner):
            raise PermissionDenied
        form = RotateForm(request.POST if "apply" in request.POST else None)
        if not (form.is_bound and form.is_valid()):
            return self.render_action_page(
                request,
                queryset,
                "rotate_secret",
                form,
                self.rotate_template,
                _("Rotate the secret"),
            )
        try:
            secret = self.model._default_manager.rotate_secret(
                obj, form.grace_period, by=request.user
            )
        except RevokedCredential:
            raise PermissionDenied(
                f"This {self.opts.verbose_name} was revoked meanwhile."
            ) from None
        self.audit(request, "rotate", obj, grace_seconds=form.cleaned_data["grace"])
        return self.render_secret(request, obj, secret, self.rotated_title)
