"""Small helpers shared by the tests: users and keys made the way an operator would."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser

from apiauth.models import APIKey


def make_user(username: str = "alice", **fields: Any) -> AbstractBaseUser:
    return get_user_model().objects.create_user(username=username, password="pw", **fields)


def make_key(**fields: Any) -> tuple[APIKey, str]:
    fields.setdefault("name", "test key")
    fields.setdefault("scopes", ["orders:read", "orders:write"])
    return APIKey.objects.create_key(**fields)
