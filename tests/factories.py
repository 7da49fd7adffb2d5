"""Small helpers shared by the tests: users and keys made the way an operator would."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from apiauth.models import APIKey


def make_user(username: str = "alice", **fields: Any) -> User:
    # The demo and the tests use Django's default user model.
    return User.objects.create_user(username=username, password="pw", **fields)


def make_key(**fields: Any) -> tuple[APIKey, str]:
    fields.setdefault("name", "test key")
    fields.setdefault("scopes", ["orders:read", "orders:write"])
    return APIKey.objects.create_key(**fields)
