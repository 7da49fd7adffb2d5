"""``apiauth_revokekey``: revoke a key by its raw value or public id. Idempotent."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apiauth import audit, crypto
from apiauth.conf import conf
from apiauth.management.commands import printable
from apiauth.models import APIKey


class Command(BaseCommand):
    help = "Revoke an API key, given the raw key or its public id. Revoking twice is a no-op."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", metavar="KEY_OR_PUBLIC_ID")
        parser.add_argument("--reason", default="", help="Why (kept in the audit trail).")

    def handle(self, *args: Any, **options: Any) -> None:
        key = self.find(options["key"].strip())
        name = printable(key.name)
        if key.revoke(reason=options["reason"]):
            audit.record("revoke", key, reason=options["reason"])
            self.stdout.write(f"Revoked {key.public_id} ({name}).")
        else:
            self.stdout.write(f"{key.public_id} ({name}) was already revoked.")

    def find(self, value: str) -> APIKey:
        # The argument may be a raw key, or part of one: it is repeated only when it has the
        # exact shape of a public id, which is no secret.
        if crypto.looks_like_key(value, conf.KEY_PREFIX):
            try:
                return APIKey.objects.get_from_key(value)
            except (crypto.MalformedKey, APIKey.DoesNotExist):
                raise CommandError("No such key (the raw key given is unknown).") from None
        if not crypto.PUBLIC_ID_RE.fullmatch(value):
            raise CommandError(
                "That is neither one of our keys nor a public id (12 letters and digits); "
                "it is not repeated here in case it is a secret."
            )
        try:
            return APIKey.objects.get(public_id=value)
        except APIKey.DoesNotExist:
            raise CommandError(f"No key with public id {value!r}.") from None
