"""``apiauth_rotatesigningkey``: one rotation step of the JWT signing keys, for cron and CI.

Promotes the published *next* key (generating one first when there is none), retires the
active key (it verifies its tokens until they expire), publishes a new *next* key so relying
parties cache it before it signs, and revokes retired keys older than ``MAX_TOKEN_LIFETIME``.
With ``--if-older-than SECONDS`` it does nothing while the active key is younger, so a daily
cron job can ask for, say, a monthly rotation. Every change is audited.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from apiauth import audit, jose
from apiauth.models import SigningKey


class Command(BaseCommand):
    help = "Rotate the JWT signing keys: promote next, retire active, publish a new next."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--algorithm", choices=jose.SIGNING_ALGORITHMS, help="Of new keys.")
        parser.add_argument("--key-size", type=int, choices=(2048, 3072), help="RS256 only.")
        parser.add_argument(
            "--if-older-than",
            type=int,
            metavar="SECONDS",
            help="Rotate only when the active key is at least this old.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        algorithm, size = options["algorithm"], options["key_size"]
        if size is not None and algorithm not in (None, "RS256"):
            raise CommandError("--key-size is for RS256 keys only.")
        active = SigningKey.objects.filter(state=SigningKey.State.ACTIVE).first()
        minimum = options["if_older_than"]
        if minimum is not None and active is not None and active.activated_at is not None:
            age = timezone.now() - active.activated_at
            if age < datetime.timedelta(seconds=minimum):
                self.stdout.write(f"active {active.kid} is {int(age.total_seconds())}s old: kept")
                return
        try:
            with transaction.atomic():
                rotation = SigningKey.objects.rotate(algorithm, size)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        if rotation.retired is not None:
            audit.record("retire", rotation.retired, reason="apiauth_rotatesigningkey")
            self.stdout.write(f"retired {rotation.retired.kid}")
        audit.record("promote", rotation.active, reason="apiauth_rotatesigningkey")
        audit.record("issue", rotation.next, reason="apiauth_rotatesigningkey")
        for key in rotation.expired:
            audit.record("revoke", key, reason=key.reason)
            self.stdout.write(f"revoked {key.kid} (every token it signed has expired)")
        self.stdout.write(f"next {rotation.next.kid} ({rotation.next.algorithm})")
        self.stdout.write(f"active {rotation.active.kid} ({rotation.active.algorithm})")
