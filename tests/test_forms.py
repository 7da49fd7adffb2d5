"""The admin's forms as an operator reads them: every field's label, help, widget and choices,
and every refusal's words, compared with ``tests/data/forms.txt`` (regenerate after a change
on purpose with ``APIAUTH_UPDATE_SNAPSHOTS=1 pytest tests/test_forms.py`` and read the diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.conf import settings
from django.test import override_settings

from apiauth.forms import (
    APIKeyForm,
    ApplicationForm,
    HMACCredentialForm,
    RevokeForm,
    RollForm,
    RotateForm,
    SigningKeyForm,
)
from apiauth.models import APIKey, Application, SigningKey
from tests.factories import make_key, make_user

pytestmark = pytest.mark.django_db

SNAPSHOT = Path(__file__).parent / "data" / "forms.txt"
REGISTRY = {
    "orders:items:read": "Read order items",
    "orders:read": "Read orders",
    "orders:write": "Place orders",
    "reports:read": "Read reports",
    "ping": "Ping",
}


def described(title: str, form: forms.BaseForm) -> list[str]:
    lines = [f"## {title}"]
    for name, field in form.fields.items():
        widget = field.widget
        lines.append(
            f"{name}: label={field.label!s} required={field.required} "
            f"widget={type(widget).__name__} attrs={json.dumps(widget.attrs, sort_keys=True)}"
        )
        if field.help_text:
            lines.append(f"    help: {field.help_text!s}")
        choices: Any = getattr(field, "choices", None)
        if isinstance(field, forms.ModelChoiceField):
            # Primary keys differ between databases: the labels say it all.
            labels = [str(label) for _pk, label in choices]
            lines.append(f"    choices: {'; '.join(labels)}")
        elif choices is not None:
            lines.append(f"    choices: {_choices(choices)}")
        initial = form.initial.get(name, field.initial)
        if initial not in (None, "") and name != "form_token":
            lines.append(f"    initial: {initial!s}")
    return lines


def _choices(choices: Any) -> str:
    out = []
    for value, label in choices:
        if isinstance(label, list | tuple):
            out.append(f"{value!s}: [{_choices(label)}]")
        else:
            out.append(f"{value!s}={label!s}")
    return "; ".join(out)


def errors(title: str, form: forms.BaseForm) -> list[str]:
    assert not form.is_valid()
    lines = [f"## {title}"]
    for name, problems in sorted(form.errors.as_data().items()):
        for problem in problems:
            lines.append(f"{name} [{problem.code}]: {' '.join(problem.messages)}")
    return lines


def key_data(**changes: Any) -> dict[str, Any]:
    return {
        "name": "partner",
        "owner": "",
        "scopes": "orders:read",
        "allowed_networks": "",
        "plan": "",
        "rate_limits": "",
        "form_token": "t" * 32,
        **changes,
    }


def form_for(cls: type[Any], *args: Any, actor: Any = None, **kwargs: Any) -> Any:
    return type(cls.__name__, (cls,), {"actor": actor})(*args, **kwargs)


def test_every_label_help_and_refusal_word_for_word() -> None:
    root = make_user("root", is_superuser=True, is_staff=True)
    staff = make_user("staff", is_staff=True)
    lines: list[str] = []
    with override_settings(APIAUTH={**settings.APIAUTH, "SCOPES": {}}):
        lines += described("API key, add, free-text scopes", form_for(APIKeyForm, actor=root))
        key, _raw = make_key(
            scopes=["orders:read"], allowed_networks=["10.0.0.0/8"], rate_limits={"burst": 3}
        )
        lines += described(
            "API key, change", form_for(APIKeyForm, instance=APIKey.objects.get(pk=key.pk))
        )
        lines += errors(
            "API key, bad input",
            form_for(
                APIKeyForm,
                key_data(
                    name="a\u202eb",
                    scopes="orders:*:x",
                    allowed_networks="10.0.0.0/33",
                    plan="gold",
                    expires_at="soon",
                ),
                actor=root,
            ),
        )
        for text in ["{", "[1]", '{"a": {"b": {"c": {"d": 1}}}}', '{"rate": "x"}']:
            lines += errors(
                f"API key, overrides {text}",
                form_for(APIKeyForm, key_data(rate_limits=text), actor=root),
            )
        lines += errors(
            "API key, someone else as owner",
            form_for(APIKeyForm, key_data(owner=str(root.pk)), actor=staff),
        )
        issued, _raw = make_key(name="first")
        APIKey.objects.filter(pk=issued.pk).update(idempotency_key="t" * 32)
        lines += errors(
            "API key, the same form again", form_for(APIKeyForm, key_data(), actor=root)
        )
        again, _raw = make_key(name="again")
        APIKey.objects.filter(pk=again.pk).update(created_by=root)
        lines += errors(
            "API key, the values just issued, in a new form (Back, then Save)",
            form_for(APIKeyForm, key_data(name="again", form_token="n" * 32), actor=root),
        )
        revoked = APIKey.objects.get(pk=key.pk)
        APIKey.objects.filter(pk=key.pk).update(revoked_at="2026-01-01T00:00:00Z")
        lines += errors(
            "API key, revoked while edited",
            form_for(APIKeyForm, key_data(form_token=""), instance=revoked, actor=root),
        )
    with override_settings(APIAUTH={**settings.APIAUTH, "SCOPES": REGISTRY}):
        lines += described("API key, add, scope registry", form_for(APIKeyForm, actor=root))
        other, _raw = make_key(scopes=["orders:read", "ping"])
        lines += described(
            "API key, change, scope registry",
            form_for(APIKeyForm, instance=APIKey.objects.get(pk=other.pk)),
        )
        lines += described("HMAC credential, add", form_for(HMACCredentialForm, actor=root))
    with override_settings(APIAUTH={**settings.APIAUTH, "SCOPES": {}, "DEFAULT_PLAN": None}):
        lines += described("API key, add, no default plan", form_for(APIKeyForm, actor=root))
    lines += described("application, add", form_for(ApplicationForm, actor=root))
    app, _secret = Application.objects.create_application(
        name="web", redirect_uris=["https://a.example/cb", "http://127.0.0.1/cb"]
    )
    lines += described(
        "application, change",
        form_for(ApplicationForm, instance=Application.objects.get(pk=app.pk), actor=root),
    )
    app_data = {**key_data(form_token="a" * 32), "client_type": "public"}
    lines += errors(
        "application, no redirect URI",
        form_for(ApplicationForm, {**app_data, "grant_types": ["authorization_code"]}, actor=root),
    )
    lines += errors(
        "application, a public client's client credentials",
        form_for(
            ApplicationForm,
            {
                **app_data,
                "redirect_uris": "https://a.example/cb",
                "grant_types": ["client_credentials"],
            },
            actor=root,
        ),
    )
    public, _ = Application.objects.create_application(
        name="spa", client_type="public", redirect_uris=["https://a.example/cb"]
    )
    lines += errors(
        "application, a public client changed to client credentials",
        form_for(
            ApplicationForm,
            {
                **key_data(form_token=""),
                "redirect_uris": "https://a.example/cb",
                "grant_types": ["client_credentials"],
            },
            instance=Application.objects.get(pk=public.pk),
            actor=root,
        ),
    )
    lines += described("revoke", RevokeForm())
    lines += errors("revoke, no reason", RevokeForm({"reason": ""}))
    lines += errors("revoke, a long reason", RevokeForm({"reason": "x" * 501}))
    lines += described("roll", RollForm())
    lines += described("rotate", RotateForm())
    lines += errors("roll, an unknown grace", RollForm({"grace": "5"}))
    lines += described("signing key, add", SigningKeyForm())
    lines += errors(
        "signing key, a size for a key that has none",
        SigningKeyForm({"algorithm": "EdDSA", "key_size": "2048"}),
    )
    SigningKey.objects.generate("ES256")
    lines += errors("signing key, a next key exists", SigningKeyForm({"algorithm": "ES256"}))
    text = "\n".join(lines).replace(issued.public_id, "<public id>")
    text = text.replace(again.public_id, "<public id>") + "\n"
    if os.environ.get("APIAUTH_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text()


def test_the_grace_is_a_duration() -> None:
    form = RollForm({"grace": "3600"})
    assert form.is_valid() and form.grace_period.total_seconds() == 3600
    form = RotateForm({"grace": "0"})
    assert form.is_valid() and form.grace_period.total_seconds() == 0


def test_a_form_token_per_rendering() -> None:
    first, second = APIKeyForm(), APIKeyForm()
    assert len(first.initial["form_token"]) == 32  # 24 random bytes, base64url
    assert first.initial["form_token"] != second.initial["form_token"]


def test_another_keys_revocation_does_not_freeze_this_one() -> None:
    root = make_user("root", is_superuser=True, is_staff=True)
    revoked, _ = make_key(name="gone")
    revoked.revoke()
    key, _ = make_key(name="kept")
    form = form_for(
        APIKeyForm, key_data(form_token=""), instance=APIKey.objects.get(pk=key.pk), actor=root
    )
    assert form.is_valid(), form.errors
