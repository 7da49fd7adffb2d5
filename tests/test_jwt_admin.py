"""The admin of signing keys and token families, used as an operator would."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apiauth.models import AuditEvent, SigningKey, TokenFamily
from tests.factories import make_key

pytestmark = pytest.mark.django_db


def act(client: Client, model: str, action: str, *pks: Any) -> Any:
    return client.post(
        reverse(f"admin:apiauth_{model}_changelist"),
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )


def audited(action: str, kid: str) -> bool:
    return AuditEvent.objects.filter(action=action, credential_id=kid).exists()


def test_generate_promote_retire_revoke(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "RS256", "key_size": "3072"}
    )
    assert response.status_code == 302, response.content
    key = SigningKey.objects.get()
    assert (key.algorithm, key.key_size, key.state) == ("RS256", 3072, "next")
    assert audited("issue", key.kid)
    page = admin_client.get(reverse("admin:apiauth_signingkey_change", args=[key.pk]))
    assert b"PRIVATE" not in page.content and key.kid.encode() in page.content

    act(admin_client, "signingkey", "promote_key", key.pk)
    key.refresh_from_db()
    assert key.state == "active" and audited("promote", key.kid)

    second = SigningKey.objects.generate("ES256")
    act(admin_client, "signingkey", "promote_key", second.pk)
    key.refresh_from_db()
    assert key.state == "retired" and audited("retire", key.kid)

    third = SigningKey.objects.generate("EdDSA")
    act(admin_client, "signingkey", "retire_keys", third.pk)
    third.refresh_from_db()
    assert third.state == "retired" and audited("retire", third.kid)

    act(admin_client, "signingkey", "revoke_selected", key.pk)
    key.refresh_from_db()
    assert key.state == "revoked" and audited("revoke", key.kid)


def test_second_next_key_is_refused_by_the_form(admin_client: Client) -> None:
    SigningKey.objects.generate("ES256")
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "ES256", "key_size": ""}
    )
    assert response.status_code == 200
    assert SigningKey.objects.count() == 1


def test_key_size_only_for_rsa(admin_client: Client) -> None:
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_add"), {"algorithm": "ES256", "key_size": "2048"}
    )
    assert response.status_code == 200 and not SigningKey.objects.exists()


def test_retire_active_is_refused_with_a_message(admin_client: Client) -> None:
    key = SigningKey.objects.generate("ES256", state="active")
    response = act(admin_client, "signingkey", "retire_keys", key.pk)
    assert b"promoting another" in response.content
    key.refresh_from_db()
    assert key.state == "active"


def test_promote_needs_exactly_one(admin_client: Client) -> None:
    a, b = (
        SigningKey.objects.generate("ES256"),
        SigningKey.objects.generate("ES256", state="retired"),
    )
    response = act(admin_client, "signingkey", "promote_key", a.pk, b.pk)
    assert b"exactly one" in response.content


def test_keys_cannot_be_deleted(admin_client: Client) -> None:
    key = SigningKey.objects.generate("ES256")
    response = admin_client.post(
        reverse("admin:apiauth_signingkey_delete", args=[key.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert SigningKey.objects.filter(pk=key.pk).exists()


def test_live_families_on_the_key_page_and_revocation(admin_client: Client, client: Client) -> None:
    SigningKey.objects.generate("ES256", state="active")
    key, raw = make_key(plan="pro")
    issued = client.post(
        "/auth/token",
        urlencode({"grant_type": "client_credentials"}),
        content_type="application/x-www-form-urlencoded",
        headers={"X-API-Key": raw},
    ).json()
    family = TokenFamily.objects.get()
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    assert str(family.pk)[:8].encode() in page.content
    act(admin_client, "tokenfamily", "revoke_families", family.pk)
    family.refresh_from_db()
    assert family.revoked_at is not None
    assert AuditEvent.objects.filter(action="revoke", credential_kind="token_family").exists()
    refused = client.get("/v1/ping", HTTP_AUTHORIZATION=f"Bearer {issued['access_token']}")
    assert refused.status_code == 401 and refused.json()["code"] == "revoked"
    page = admin_client.get(reverse("admin:apiauth_apikey_change", args=[key.pk]))
    assert str(family.pk)[:8].encode() not in page.content
    assert (
        admin_client.get(reverse("admin:apiauth_tokenfamily_change", args=[family.pk])).status_code
        == 200
    )


def test_key_actions_name_the_operator_and_address(admin_client: Client) -> None:
    add = reverse("admin:apiauth_signingkey_add")
    response = admin_client.post(add, {"algorithm": "ES256"}, REMOTE_ADDR="192.0.2.40")
    assert response.status_code == 302, response.content
    key = SigningKey.objects.get()
    act(admin_client, "signingkey", "promote_key", key.pk)
    second = SigningKey.objects.generate("ES256")
    act(admin_client, "signingkey", "promote_key", second.pk)  # retires the first
    events = AuditEvent.objects.filter(credential_id=key.kid).order_by("created_at", "pk")
    assert [(e.action, e.reason) for e in events] == [
        ("issue", ""),
        ("promote", ""),
        ("retire", "replaced by a promotion"),
    ]
    for event in events:
        assert event.actor is not None and event.actor.is_superuser
    assert [e.client_ip for e in events] == ["192.0.2.40", "127.0.0.1", "127.0.0.1"]


def test_families_are_not_added_or_deleted_by_hand(admin_client: Client) -> None:
    """Families come from the token endpoint and end by revocation, which is audited."""
    key, _raw = make_key(plan="pro")
    family = TokenFamily.objects.create(api_key=key, expires_at=timezone.now())
    assert admin_client.get(reverse("admin:apiauth_tokenfamily_add")).status_code == 403
    delete = reverse("admin:apiauth_tokenfamily_delete", args=[family.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TokenFamily.objects.filter(pk=family.pk).exists()
