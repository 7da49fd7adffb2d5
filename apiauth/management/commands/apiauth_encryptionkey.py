"""``apiauth_encryptionkey``: print a new key for ``APIAUTH["ENCRYPTION_KEYS"]``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apiauth import encryption


class Command(BaseCommand):
    help = "Print a new random encryption key (32 bytes, base64url) for APIAUTH['ENCRYPTION_KEYS']."
    # Runs before any key is configured, when the checks would stop it.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(encryption.generate_key())
