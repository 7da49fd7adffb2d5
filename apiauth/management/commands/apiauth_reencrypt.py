"""``apiauth_reencrypt``: encrypt every stored secret again with the first encryption key.

Rotation of ``APIAUTH["ENCRYPTION_KEYS"]``: put the new key first (keep the old one after it),
deploy, run this command, then remove the old key. Safe to run again: it rewrites only the
secrets not yet under the first key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apiauth.encryption import DecryptionError
from apiauth.models import HMACCredential


class Command(BaseCommand):
    help = "Re-encrypt stored secrets with the first of APIAUTH['ENCRYPTION_KEYS']."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = HMACCredential.objects.reencrypt()
        except DecryptionError as exc:
            raise CommandError(
                f"A stored secret does not decrypt ({exc}): is the key it was made with still "
                "listed in APIAUTH['ENCRYPTION_KEYS']?"
            ) from None
        self.stdout.write(f"Re-encrypted {count} HMAC credential(s).")
