"""Admin forms: scopes and networks are edited as text, stored as validated lists."""

from __future__ import annotations

import datetime
import json
import secrets
from typing import TYPE_CHECKING, Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth.conf import conf
from apiauth.models import (
    APIKey,
    Application,
    HMACCredential,
    SigningKey,
    may_act_as,
    validate_redirect_uris,
)
from apiauth.models.oauth import GRANT_TYPES
from apiauth.net import parse_networks
from apiauth.parsers import is_text, nesting_exceeds
from apiauth.scopes import parse_scopes

if TYPE_CHECKING:
    APIKeyModelForm = forms.ModelForm[APIKey]
else:  # Django's classes are not subscriptable at run time.
    APIKeyModelForm = forms.ModelForm


def default_plan_label() -> Any:
    """How a key without a plan of its own is shown: on the default plan, named if set."""
    default = conf.DEFAULT_PLAN
    return _("Default plan (%(plan)s)") % {"plan": default} if default else _("Default plan")


def plan_choices() -> list[tuple[str, Any]]:
    return [("", default_plan_label()), *((name, name) for name in sorted(conf.PLANS))]


def scope_choices(registry: dict[str, str]) -> list[tuple[str, Any]]:
    """The registry as checkbox choices, grouped by resource, each group led by its wildcard."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for scope, description in sorted(registry.items()):
        resource = scope.split(":", 1)[0] if ":" in scope else ""
        groups.setdefault(resource, []).append((scope, f"{scope} — {description}"))
    choices: list[tuple[str, Any]] = [("*", _("* — every scope, present and future"))]
    for resource, members in groups.items():
        if resource:
            wildcard = f"{resource}:*"
            label = _("%(wildcard)s — every %(resource)s scope") % {
                "wildcard": wildcard,
                "resource": resource,
            }
            members = [(wildcard, str(label)), *(m for m in members if m[0] != wildcard)]
        choices.append((resource or str(_("other")), members))
    return choices


class APIKeyForm(APIKeyModelForm):
    actor: Any = None
    """The user filling the form in (set by the admin): the owner must be one they may act as."""
    resubmission_window = datetime.timedelta(minutes=10)
    """How long the same operator's credential of the same name and owner counts as the one
    this form just issued (Back, then Save)."""

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
    form_token = forms.CharField(widget=forms.HiddenInput, max_length=64)
    rate_limits = forms.CharField(
        label=_("Rate-limit overrides"),
        required=False,
        max_length=2000,
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
        registry = conf.SCOPES
        if registry:
            self.fields["scopes"] = forms.MultipleChoiceField(
                label=_("Scopes"),
                required=False,
                choices=scope_choices(registry),
                widget=forms.CheckboxSelectMultiple,
                help_text=_("Empty means no scope: only views that require none."),
            )
        if self.instance.pk is not None:
            del self.fields["form_token"]
            scopes = self.instance.scopes
            self.initial["scopes"] = list(scopes) if registry else " ".join(scopes)
            self.initial["allowed_networks"] = "\n".join(self.instance.allowed_networks)
            if self.instance.rate_limits:
                self.initial["rate_limits"] = json.dumps(self.instance.rate_limits)
        else:
            # One per rendering of the add form: submitting it twice cannot issue two keys.
            self.initial["form_token"] = secrets.token_urlsafe(24)

    def clean_owner(self) -> Any:
        owner = self.cleaned_data.get("owner")
        if not may_act_as(self.actor, owner):
            raise forms.ValidationError(
                _(
                    "You may not issue credentials acting as this user: choose yourself or no "
                    "owner. Only superusers may choose staff; others need the “issue for "
                    "others” permission, and then only for users who are not staff."
                ),
                code="owner_not_allowed",
            )
        return owner

    def clean(self) -> dict[str, Any]:
        super().clean()
        pk = self.instance.pk
        manager = self._meta.model._default_manager
        if pk is None:
            self.refuse_resubmission()
        elif manager.filter(pk=pk, revoked_at__isnull=False).exists():
            raise forms.ValidationError(
                _("This key was revoked while you edited it; revoked keys cannot be changed."),
                code="revoked",
            )
        return self.cleaned_data

    def refuse_resubmission(self) -> None:
        """An add form sent again issues nothing: the same rendering of it (its token), or a
        new rendering the browser filled in with what was just issued (Back, then Save: the
        page is fetched anew, the token is new, the fields are restored). Errors on the
        form, not the hidden field, so the operator sees them."""
        manager = self._meta.model._default_manager
        token = self.cleaned_data.get("form_token")
        issued = manager.filter(idempotency_key=token).first() if token else None
        if issued is not None:
            raise forms.ValidationError(
                _(
                    "This form was already submitted: it issued “%(name)s” (%(public_id)s), "
                    "whose secret was shown once and cannot be shown again. To issue another, "
                    "open a new Add form."
                )
                % {"name": issued.name, "public_id": issued.public_id},
                code="already_submitted",
            )
        name = self.cleaned_data.get("name")
        since = timezone.now() - self.resubmission_window
        recent = manager.filter(
            name=name,
            owner=self.cleaned_data.get("owner"),
            created_by=self.actor if getattr(self.actor, "pk", None) else None,
            created_at__gte=since,
            revoked_at__isnull=True,
        ).first()
        if name and recent is not None:
            raise forms.ValidationError(
                _(
                    "You issued “%(name)s” (%(public_id)s) for this owner a moment ago; its "
                    "secret was shown once and cannot be shown again. Nothing was issued now. "
                    "To issue a second one, give it another name."
                )
                % {"name": recent.name, "public_id": recent.public_id},
                code="just_issued",
            )

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
        except (ValueError, RecursionError):
            raise forms.ValidationError(_("Enter valid JSON."), code="invalid_json") from None
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Enter a JSON object."), code="invalid_json")
        if nesting_exceeds(value, 3) or not is_text(value):
            raise forms.ValidationError(
                _('Enter limits such as {"rate": "120/min", "burst": 20}.'), code="invalid_json"
            )
        return value


class HMACCredentialForm(APIKeyForm):
    """The same fields and checks as for keys; the secret is generated on save."""

    class Meta(APIKeyForm.Meta):
        model = HMACCredential  # type: ignore[assignment]


class ApplicationForm(APIKeyForm):
    """An OAuth application: the key's fields, and how people's tokens reach it."""

    redirect_uris = forms.CharField(
        label=_("Redirect URIs"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_(
            "One per line, matched exactly: https://app.example/callback, an app's own "
            "scheme (com.example.app:/callback), or http://127.0.0.1/callback for a CLI (any "
            "port)."
        ),
    )
    grant_types = forms.MultipleChoiceField(
        label=_("Grant types"),
        choices=[(grant, grant) for grant in GRANT_TYPES],
        widget=forms.CheckboxSelectMultiple,
        initial=["authorization_code", "refresh_token"],
        help_text=_("client_credentials: a confidential app acting as itself."),
    )

    class Meta(APIKeyForm.Meta):
        model = Application  # type: ignore[assignment]
        fields = [
            "name",
            "client_type",
            "redirect_uris",
            "grant_types",
            "first_party",
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
            uris = getattr(self.instance, "redirect_uris", [])
            self.initial["redirect_uris"] = "\n".join(uris)
            self.fields.pop("client_type", None)  # a secret is issued or not at creation

    def clean_redirect_uris(self) -> list[str]:
        uris = [line.strip() for line in self.cleaned_data["redirect_uris"].splitlines()]
        uris = [uri for uri in uris if uri]
        validate_redirect_uris(uris)
        return uris

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        grants = cleaned.get("grant_types") or []
        if "authorization_code" in grants and not cleaned.get("redirect_uris"):
            self.add_error(
                "redirect_uris",
                forms.ValidationError(
                    _("The authorization code grant needs a redirect URI."), code="no_redirect"
                ),
            )
        kind = cleaned.get("client_type", getattr(self.instance, "client_type", ""))
        if "client_credentials" in grants and kind == Application.ClientType.PUBLIC:
            self.add_error(
                "grant_types",
                forms.ValidationError(
                    _("A public client cannot use client credentials: it has no secret."),
                    code="public_client_credentials",
                ),
            )
        return cleaned


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


class RotateForm(RollForm):
    grace = forms.TypedChoiceField(
        label=_("The old secret stops verifying"),
        choices=GRACE_CHOICES,
        coerce=int,
        initial="86400",
    )


class SigningKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    """Generates a *next* key: there is one at most, so a second one is refused here."""

    class Meta:
        model = SigningKey
        fields = ["algorithm", "key_size"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "algorithm" not in self.fields:  # a key's page: nothing is edited
            return
        algorithm = cast(forms.ChoiceField, self.fields["algorithm"])
        # Always one chosen (no "---------"): the configured one unless the operator picks.
        algorithm.choices = list(SigningKey._meta.get_field("algorithm").choices or ())
        algorithm.initial = conf.jwt.signing_algorithm
        # On the add page only (a key's page shows these fields read-only, without help).
        algorithm.help_text = _(
            "The new key starts as next: published in the key set, not yet signing. "
            "Promote it on its page once every verifier has fetched the key set."
        )
        self.fields["key_size"].help_text = _("RSA keys only. Empty: the configured RSA key size.")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("key_size") and cleaned.get("algorithm") != "RS256":
            self.add_error(
                "key_size",
                forms.ValidationError(
                    _("Only RSA keys have a size: leave it empty for %(algorithm)s."),
                    code="no_size",
                    params={"algorithm": cleaned.get("algorithm")},
                ),
            )
        if SigningKey.objects.filter(state=SigningKey.State.NEXT).exists():
            raise forms.ValidationError(
                _("A next key is already published: promote or retire it first."),
                code="next_exists",
            )
        return cleaned
