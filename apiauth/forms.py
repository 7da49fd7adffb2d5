"""Admin forms: scopes and networks are edited as text, stored as validated lists."""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from apiauth.conf import conf
from apiauth.models import APIKey
from apiauth.net import parse_networks
from apiauth.scopes import parse_scopes

if TYPE_CHECKING:
    APIKeyModelForm = forms.ModelForm[APIKey]
else:  # Django's classes are not subscriptable at run time.
    APIKeyModelForm = forms.ModelForm


def plan_choices() -> list[tuple[str, Any]]:
    default = conf.DEFAULT_PLAN
    blank = _("Default plan (%(plan)s)") % {"plan": default} if default else _("Default plan")
    return [("", blank), *((name, name) for name in sorted(conf.PLANS))]


class APIKeyForm(APIKeyModelForm):
    scopes = forms.CharField(
        label=_("Scopes"),
        required=False,
        widget=forms.TextInput(attrs={"size": 60}),
        help_text=_(
            "Comma or space separated, e.g. orders:read orders:write; orders:* is a "
            "wildcard. Empty means no scope: only views that require none."
        ),
    )
    allowed_networks = forms.CharField(
        label=_("Allowed IP networks"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_(
            "One per line or comma separated: 10.0.0.0/8, 2001:db8::/32, 192.0.2.7. "
            "Empty means from anywhere."
        ),
    )
    plan = forms.ChoiceField(label=_("Plan"), required=False, choices=plan_choices)
    rate_limits = forms.CharField(
        label=_("Rate-limit overrides"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_(
            'JSON merged over the plan, e.g. {"rate": "120/min", "burst": 20, '
            '"quotas": ["5000/day"]}. Empty: the plan as it is.'
        ),
    )

    class Meta:
        model = APIKey
        fields = [
            "name",
            "owner",
            "scopes",
            "allowed_networks",
            "plan",
            "rate_limits",
            "expires_at",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["scopes"] = " ".join(self.instance.scopes)
            self.initial["allowed_networks"] = "\n".join(self.instance.allowed_networks)
            if self.instance.rate_limits:
                self.initial["rate_limits"] = json.dumps(self.instance.rate_limits)

    def clean_scopes(self) -> list[str]:
        return parse_scopes(self.cleaned_data["scopes"])

    def clean_allowed_networks(self) -> list[str]:
        return parse_networks(self.cleaned_data["allowed_networks"])

    def clean_rate_limits(self) -> dict[str, Any] | None:
        text = self.cleaned_data["rate_limits"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            raise forms.ValidationError(_("Enter valid JSON."), code="invalid_json") from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Enter a JSON object."), code="invalid_json")
        return value


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the audit trail, e.g. “leaked in a public repository”."),
    )


GRACE_CHOICES = [
    ("0", _("Immediately")),
    ("3600", _("After 1 hour")),
    ("86400", _("After 24 hours")),
    ("604800", _("After 7 days")),
]


class RollForm(forms.Form):
    grace = forms.TypedChoiceField(
        label=_("The old key stops working"),
        choices=GRACE_CHOICES,
        coerce=int,
        initial="86400",
    )

    @property
    def grace_period(self) -> datetime.timedelta:
        return datetime.timedelta(seconds=self.cleaned_data["grace"])
