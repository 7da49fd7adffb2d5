"""Both credential admins, every rule on each: what one of the twins guards, the other must
guard too (they share ``CredentialAdmin``; a subclass that overrides a step must not lose it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from apiauth.models import APIKey, Application, AuditEvent, HMACCredential
from tests.factories import make_hmac, make_key, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("_redis")]


@dataclass(frozen=True)
class Kind:
    model: str
    make: Any
    renew_url: str
    renew_action: str
    noun: str
    nouns: str

    def url(self, name: str, *args: Any) -> str:
        return reverse(f"admin:apiauth_{self.model}_{name}", args=args)

    def action(self, client: Client, name: str, objs: list[Any], **data: Any) -> Any:
        payload = {"action": name, "_selected_action": [o.pk for o in objs], **data}
        return client.post(self.url("changelist"), payload, follow=True)


def make_app(**fields: Any) -> tuple[Application, str]:
    fields.setdefault("name", "web app")
    fields.setdefault("client_type", "confidential")
    fields.setdefault("redirect_uris", ["https://app.example/cb"])
    return Application.objects.create_application(**fields)


KINDS = [
    Kind("apikey", make_key, "roll", "roll_key", "API key", "API keys"),
    Kind(
        "hmaccredential",
        make_hmac,
        "rotate",
        "rotate_secret",
        "HMAC credential",
        "HMAC credentials",
    ),
    Kind(
        "application",
        make_app,
        "rotate",
        "rotate_secret",
        "OAuth application",
        "OAuth applications",
    ),
]


@pytest.fixture(params=KINDS, ids=lambda kind: kind.model)
def kind(request: pytest.FixtureRequest) -> Kind:
    return request.param  # type: ignore[no-any-return]


def operator(kind: Kind, *verbs: str) -> Client:
    user = make_user("operator", is_staff=True)
    codenames = [f"{verb}_{kind.model}" for verb in verbs]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_the_revoke_page_names_the_credential_kind(kind: Kind) -> None:
    obj, _secret = kind.make()
    client = operator(kind, "view", "change")
    page = client.get(kind.url("revoke", obj.pk)).content.decode()
    assert f"Revoke {kind.nouns}" in page
    assert f"Revoked {kind.nouns} stop working" in page
    assert 'style="background: var(--delete-button-bg)' in page  # the irreversible button
    done = kind.action(client, "revoke_selected", [obj], apply="1", reason="left")
    assert f"Revoked 1 {kind.noun}." in done.content.decode()
    again = kind.action(client, "revoke_selected", [obj], apply="1", reason="left")
    assert f"1 {kind.noun} already revoked." in again.content.decode()
    assert AuditEvent.objects.filter(action="revoke", credential_id=obj.public_id).count() == 1


def test_a_viewer_can_neither_revoke_nor_renew(kind: Kind) -> None:
    obj, _secret = kind.make()
    client = operator(kind, "view")
    assert client.get(kind.url("revoke", obj.pk)).status_code == 403
    assert client.get(kind.url(kind.renew_url, obj.pk)).status_code == 403
    kind.action(client, "revoke_selected", [obj], apply="1", reason="x")
    obj.refresh_from_db()
    assert not obj.is_revoked


def test_the_change_page_offers_its_own_renewal(kind: Kind) -> None:
    obj, _secret = kind.make()
    page = operator(kind, "view", "change").get(kind.url("change", obj.pk)).content.decode()
    assert kind.url(kind.renew_url, obj.pk) in page
    assert kind.url("revoke", obj.pk) in page
    other = "roll" if kind.renew_url == "rotate" else "rotate"
    assert f"/{obj.pk}/{other}/" not in page


def test_a_revoked_credential_is_view_only(kind: Kind) -> None:
    obj, _secret = kind.make()
    obj.revoke()
    client = operator(kind, "view", "change")
    page = client.get(kind.url("change", obj.pk)).content.decode()
    assert 'name="_save"' not in page
    assert kind.url(kind.renew_url, obj.pk) not in page
    assert client.get(kind.url(kind.renew_url, obj.pk)).status_code == 403
    assert client.get(kind.url("revoke", obj.pk)).status_code == 403


def test_staff_cannot_renew_a_superusers_credential(kind: Kind) -> None:
    root = User.objects.create_superuser("root", "", "pw")
    obj, _secret = kind.make(owner=root)
    client = operator(kind, "view", "change")
    assert client.get(kind.url(kind.renew_url, obj.pk)).status_code == 403
    kind.action(client, kind.renew_action, [obj], apply="1", grace="0")
    assert AuditEvent.objects.filter(action__in=["roll", "rotate"]).count() == 0
    # ...but may revoke it: revoking only takes reach away.
    kind.action(client, "revoke_selected", [obj], apply="1", reason="compromised")
    obj.refresh_from_db()
    assert obj.is_revoked


def test_staff_cannot_reset_a_superusers_limits(kind: Kind) -> None:
    root = User.objects.create_superuser("root", "", "pw")
    obj, _secret = kind.make(owner=root)
    response = kind.action(operator(kind, "view", "change"), "reset_rate_limits", [obj])
    assert f"Skipped {obj.public_id}" in response.content.decode()
    assert not AuditEvent.objects.filter(action="reset_limits").exists()


def test_renewing_needs_exactly_one_live_credential(kind: Kind) -> None:
    one, _ = kind.make()
    two, _ = kind.make()
    client = operator(kind, "view", "change")
    response = kind.action(client, kind.renew_action, [one, two])
    said = f'<li class="error">Select exactly one {kind.noun} that is not revoked.</li>'
    assert said in response.content.decode()
    two.revoke()
    response = kind.action(client, kind.renew_action, [two])
    assert f"Select exactly one {kind.noun} that is not revoked." in response.content.decode()


def test_renewing_shows_the_new_secret_once_and_audits(kind: Kind) -> None:
    obj, _secret = kind.make()
    client = operator(kind, "view", "change")
    confirm = client.get(kind.url(kind.renew_url, obj.pk))
    assert confirm.status_code == 200 and 'name="grace"' in confirm.content.decode()
    response = kind.action(client, kind.renew_action, [obj], apply="1", grace="3600")
    assert response["Cache-Control"] == "no-store"
    assert AuditEvent.objects.filter(action__in=["roll", "rotate"]).count() == 1
    if kind.model == "apikey":
        assert APIKey.objects.filter(rolled_from=obj).exists()
    elif kind.model == "application":
        assert Application.objects.get(pk=obj.pk).previous_secret_hash
    else:
        assert HMACCredential.objects.get(pk=obj.pk).previous_secret


def test_only_a_superuser_deletes(kind: Kind) -> None:
    obj, _secret = kind.make()
    client = operator(kind, "view", "change", "delete")
    assert client.get(kind.url("delete", obj.pk)).status_code == 403
    root = User.objects.create_superuser("root", "", "pw")
    admin = Client()
    admin.force_login(root)
    assert admin.post(kind.url("delete", obj.pk), {"post": "yes"}).status_code == 302
    assert AuditEvent.objects.filter(action="delete", credential_id=obj.public_id).exists()
