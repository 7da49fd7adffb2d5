"""Small helpers shared by the tests: users and keys made the way an operator would."""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from apiauth.models import APIKey, HMACCredential


def make_user(username: str = "alice", **fields: Any) -> User:
    # The demo and the tests use Django's default user model.
    return User.objects.create_user(username=username, password="pw", **fields)


def make_key(**fields: Any) -> tuple[APIKey, str]:
    fields.setdefault("name", "test key")
    fields.setdefault("scopes", ["orders:read", "orders:write"])
    return APIKey.objects.create_key(**fields)


def fresh_add_form(client: Client, model: str = "apikey") -> str:
    """The admin add form's one-time token, as a browser gets it with the form."""
    page = client.get(reverse(f"admin:apiauth_{model}_add")).content.decode()
    match = re.search(r'name="form_token" value="([^"]+)"', page)
    assert match, "no idempotency key on the add form"
    return match.group(1)


def add_key(client: Client, model: str = "apikey", **data: Any) -> Any:
    """Submit the admin's add form for an API key (or an HMAC credential: ``model``), freshly
    loaded, as an operator would."""
    payload = {
        "form_token": fresh_add_form(client, model),
        "name": "partner",
        "owner": "",
        "scopes": "orders:read, orders:write",
        "allowed_networks": "",
        "plan": "",
        "expires_at_0": "",
        "expires_at_1": "",
        **data,
    }
    return client.post(reverse(f"admin:apiauth_{model}_add"), payload)


def make_hmac(**fields: Any) -> tuple[HMACCredential, str]:
    fields.setdefault("name", "test signer")
    fields.setdefault("scopes", ["orders:read", "orders:write"])
    return HMACCredential.objects.create_credential(**fields)
