"""The admin flow for HMAC credentials, as a logged-in staff user would go through it:
issue → secret shown once → rotate → revoke."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from apiauth.models import AuditEvent, HMACCredential
from tests.factories import add_key, make_hmac, make_user
from tests.utils import send

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:apiauth_hmaccredential_changelist")
ADD = reverse("admin:apiauth_hmaccredential_add")


@pytest.fixture
def staff_client() -> Client:
    """Staff with the HMAC credential permissions, not a superuser."""
    from django.contrib.auth.models import Permission

    user = make_user("operator", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__endswith="hmaccredential"))
    client = Client()
    client.force_login(user)
    return client


def secret_in(html: str) -> str:
    match = re.search(r'id="apiauth-raw-key" type="text" readonly value="([A-Za-z0-9]+)"', html)
    assert match, "no secret on the page"
    return match.group(1)


def action(client: Client, name: str, objs: list[HMACCredential], **data: Any) -> Any:
    payload = {"action": name, "_selected_action": [o.pk for o in objs], **data}
    return client.post(CHANGELIST, payload, follow=True)


def add(client: Client, **data: Any) -> Any:
    return add_key(client, "hmaccredential", **data)


def test_issue_show_once_rotate_revoke(staff_client: Client) -> None:
    response = add(staff_client)
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "shown only once" in html
    secret = secret_in(html)
    credential = HMACCredential.objects.get()
    assert credential.access_key_id in html
    assert credential.created_by is not None and credential.created_by.username == "operator"
    assert send((credential, secret)).status_code == 200

    # Never visible again: change page, list, cookies, database.
    change = reverse("admin:apiauth_hmaccredential_change", args=[credential.pk])
    for url in (change, CHANGELIST):
        page = staff_client.get(url).content.decode()
        assert credential.access_key_id in page and secret not in page
    stored = HMACCredential.objects.filter(pk=credential.pk).values().get()
    assert secret not in {str(v) for v in stored.values()}
    assert secret not in str(staff_client.cookies)
    assert "Rotate secret…" in staff_client.get(change).content.decode()

    # Rotate: a new secret, shown once; the old one verifies during the grace period.
    confirm = action(staff_client, "rotate_secret", [credential])
    assert "old secret stops verifying" in confirm.content.decode()
    rotated = action(staff_client, "rotate_secret", [credential], apply="1", grace="3600")
    new_secret = secret_in(rotated.content.decode())
    assert new_secret != secret
    assert send((credential, new_secret)).status_code == 200
    assert send((credential, secret)).status_code == 200
    assert new_secret not in staff_client.get(change).content.decode()
    # Rotating again with no grace: only the newest secret verifies.
    newest = secret_in(
        action(staff_client, "rotate_secret", [credential], apply="1", grace="0").content.decode()
    )
    assert send((credential, new_secret)).json()["code"] == "signature_mismatch"
    assert send((credential, newest)).status_code == 200

    # Revoke with a reason.
    response = action(
        staff_client, "revoke_selected", [credential], apply="1", reason="partner left"
    )
    assert "Revoked 1 HMAC credential." in response.content.decode()
    assert send((credential, newest)).json()["code"] == "revoked"
    actions = list(AuditEvent.objects.order_by("created_at").values_list("action", flat=True))
    assert actions == ["issue", "rotate", "rotate", "revoke"]
    assert AuditEvent.objects.get(action="revoke").reason == "partner left"
    assert all(
        e.credential_id == credential.access_key_id and e.credential_kind == "hmac"
        for e in AuditEvent.objects.all()
    )


def test_list_filters_and_search(staff_client: Client) -> None:
    first, _s = make_hmac(name="alpha")
    beta, _b = make_hmac(name="beta")
    beta.revoke()
    page = staff_client.get(CHANGELIST, {"status": "revoked"}).content.decode()
    assert "beta" in page and "alpha" not in page
    page = staff_client.get(CHANGELIST, {"q": first.access_key_id}).content.decode()
    assert "alpha" in page and "beta" not in page


def test_the_form_cannot_issue_twice(staff_client: Client) -> None:
    page = staff_client.get(ADD).content.decode()
    token = re.search(r'name="form_token" value="([^"]+)"', page)
    assert token
    assert add(staff_client, form_token=token.group(1)).status_code == 200
    again = add(staff_client, form_token=token.group(1))
    assert "already submitted" in again.content.decode()
    assert HMACCredential.objects.count() == 1


def test_rotate_needs_one_usable_credential(staff_client: Client) -> None:
    one, _s = make_hmac()
    two, _t = make_hmac(name="two")
    response = action(staff_client, "rotate_secret", [one, two])
    assert "exactly one" in response.content.decode()
