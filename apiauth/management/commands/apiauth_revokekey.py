"""``apiauth_revokekey``: revoke a key by its raw value or public id. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apiauth import audit, crypto
from apiauth.conf import conf
from apiauth.models import APIKey


class Command(BaseCommand):
    help = "Revoke an API key, given the raw key or its public id. Revoking twice is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", metavar="KEY_OR_PUBLIC_ID")
        parser.add_argument("--reason", default="", help="Why (kept in the audit trail).")

    def handle(self, *args: Any, **options: Any) -> None:
        key = self.find(options["key"].strip())
        if key.revoke(reason=options["reason"]):
            audit.record("revoke", key, reason=options["reason"])
            self.stdout.write(f"Revoked {key.public_id} ({key.name}).")
        else:
            self.stdout.write(f"{key.public_id} ({key.name}) was already revoked.")

    def find(self, value: str) -> APIKey:
        # The message never repeats the argument: it may be a raw key.
        if crypto.looks_like_key(value, conf.KEY_PREFIX):
            try:
                return APIKey.objects.get_from_key(value)
            except (crypto.MalformedKey, APIKey.DoesNotExist):
                raise CommandError("No such key (the raw key given is unknown).") from None
        try:
            return APIKey.objects.get(public_id=value)
        except APIKey.DoesNotExist:
            raise CommandError(f"No key with public id {value[:32]!r}.") from None
