"""``apiauth_revokehmac``: revoke an HMAC credential by its access key id. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apiauth import audit, sigv4
from apiauth.management.commands import printable
from apiauth.models import HMACCredential


class Command(BaseCommand):
    help = "Revoke an HMAC credential by its access key id. Revoking twice is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
        parser.add_argument("--reason", default="", help="Why (kept in the audit trail).")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = find(options["access_key_id"].strip())
        name = printable(credential.name)
        if credential.revoke(reason=options["reason"]):
            audit.record("revoke", credential, reason=options["reason"])
            self.stdout.write(f"Revoked {credential.access_key_id} ({name}).")
        else:
            self.stdout.write(f"{credential.access_key_id} ({name}) was already revoked.")


def find(value: str) -> HMACCredential:
    # Repeated only when shaped like an access key id: a pasted secret is never echoed.
    if not sigv4.ACCESS_KEY_ID_RE.fullmatch(value) or len(value) != 20:
        raise CommandError(
            "That is not an access key id (20 letters and digits); it is not repeated here "
            "in case it is a secret."
        )
    try:
        return HMACCredential.objects.get(access_key_id=value)
    except HMACCredential.DoesNotExist:
        raise CommandError(f"No HMAC credential with access key id {value}.") from None
