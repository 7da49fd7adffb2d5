"""The audit trail every apiauth admin leaves: who did what, from where."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from apiauth import audit
from apiauth.net import get_client_ip

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:  # Django's classes are not subscriptable at run time.
    ModelAdmin = admin.ModelAdmin


class AuditedAdmin(ModelAdmin):
    """Every operator action leaves an audit row naming the operator and their address;
    deletions too (the ``pre_delete`` receiver writes the row, this names who did it)."""

    class Media:
        css = {"all": ["apiauth/admin.css"]}

    def audit(self, request: HttpRequest, action: str, obj: Any, **details: Any) -> None:
        audit.record(action, obj, actor=request.user, client_ip=get_client_ip(request), **details)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with audit.acting(request.user, get_client_ip(request)):
            # Django's own reads only obj.
            super().delete_model(request, obj)  # pragma: no mutate

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with audit.acting(request.user, get_client_ip(request)):
            # Django's own reads only the queryset.
            super().delete_queryset(request, queryset)  # pragma: no mutate

    def one(self, request: HttpRequest, object_id: str) -> QuerySet[Any]:
        # get_object answers None for an id that is not one (``abc``, ``1.5``) as for a missing one.
        # Django's get_object and get_queryset read the request for nothing that decides here.
        obj = self.get_object(request, unquote(object_id))  # pragma: no mutate
        if obj is None:
            raise Http404
        return self.get_queryset(request).filter(pk=obj.pk)  # pragma: no mutate

    def back_to(self, obj: Model) -> HttpResponse:
        name = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        # current_app: for a project with several admin sites (the tests have one).
        url = reverse(name, args=[obj.pk], current_app=self.admin_site.name)  # pragma: no mutate
        return HttpResponseRedirect(url)

    def render_action_page(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        action: str,
        form: Any,
        template: str,
        title: Any,
    ) -> TemplateResponse:
        """The confirmation page of an action that asks something first (a reason, a grace)."""
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


MOMENT_FORMATS = {"date": "%Y-%m-%d", "minutes": "%Y-%m-%d %H:%M", "seconds": "%Y-%m-%d %H:%M:%S"}


def moment(value: datetime.datetime | None, precision: str = "minutes") -> str:
    """A list's date (and time), compact (``2026-12-04 22:39``, local time) so that wide lists
    fit a laptop; the full ISO 8601 moment is its ``title``."""
    if value is None:
        return "—"
    local = timezone.localtime(value)
    shown = local.strftime(MOMENT_FORMATS[precision])
    return format_html(
        '<time datetime="{}" title="{}">{}</time>', local.isoformat(), local.isoformat(), shown
    )
