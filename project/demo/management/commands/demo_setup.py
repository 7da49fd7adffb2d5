"""Prepare the demo for ``make run``: an admin login and a fresh API key, printed once."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apiauth import audit
from apiauth.models import APIKey, SigningKey

DEMO_KEY_NAME = "demo key (make run)"


class Command(BaseCommand):
    help = "Ensure the demo superuser exists and issue a demo API key."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD")
        user = User.objects.filter(username=username).first()
        if user is None:
            password = password or secrets.token_urlsafe(12)
            user = User.objects.create_superuser(username=username, email="", password=password)
            self.stdout.write(f"Admin login: {username} / {password}   (shown once)")
        elif password:
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Admin login: {username} / {password}   (from DEMO_ADMIN_PASSWORD)")
        else:
            self.stdout.write(
                f"Admin login: {username} (password shown on the first run; "
                "set DEMO_ADMIN_PASSWORD to reset it)"
            )

        for old in APIKey.objects.usable().filter(name=DEMO_KEY_NAME):
            if old.revoke(reason="Replaced by a new demo key."):
                audit.record("revoke", old, reason="Replaced by a new demo key.")
        # The "pro" plan: the free one's burst of 10 is spent by the README's first minute
        # (a token request and an order are writes, five units each).
        key, raw = APIKey.objects.create_key(
            name=DEMO_KEY_NAME, owner=user, scopes=["orders:read", "orders:write"], plan="pro"
        )
        audit.record("issue", key, reason="make run")
        self.stdout.write(
            f"Demo API key ({key.public_id}, scopes orders:read orders:write, plan pro):"
        )
        self.stdout.write(f"  {raw}")
        if not SigningKey.objects.filter(state=SigningKey.State.ACTIVE).exists():
            SigningKey.objects.rotate()
            self.stdout.write("Generated the first JWT signing key (and the next one).")
        self.stdout.write("Try it:")
        self.stdout.write(f'  curl -H "X-API-Key: {raw}" http://127.0.0.1:8000/v1/ping')
        self.stdout.write("Or exchange it for an access token (OAuth 2.0 client credentials):")
        self.stdout.write(
            f'  curl -H "X-API-Key: {raw}" -d grant_type=client_credentials '
            "http://127.0.0.1:8000/auth/token"
        )
        self.stdout.write("Admin: http://127.0.0.1:8000/admin/")
