"""``apiauth_rotatehmac``: give an HMAC credential a new secret without downtime.

The previous secret keeps verifying for ``--grace`` seconds (default
``APIAUTH["HMAC"]["ROTATION_GRACE"]``). The last line of stdout is ``ACCESS_KEY_ID SECRET``.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from apiauth import audit
from apiauth.conf import conf
from apiauth.management.commands import printable
from apiauth.management.commands.apiauth_revokehmac import find
from apiauth.models import HMACCredential, RevokedCredential


class Command(BaseCommand):
    help = "Rotate an HMAC credential's secret; the old one verifies until --grace ends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("access_key_id", metavar="ACCESS_KEY_ID")
        parser.add_argument("--grace", type=int, metavar="SECONDS", help="Default: ROTATION_GRACE.")

    def handle(self, *args: Any, **options: Any) -> None:
        credential = find(options["access_key_id"].strip())
        grace = options["grace"]
        if grace is None:
            grace = conf.hmac.rotation_grace
        if not 0 <= grace <= 30 * 86_400:
            raise CommandError("--grace must be between 0 and 2592000 seconds (30 days).")
        try:
            with transaction.atomic():
                secret = HMACCredential.objects.rotate_secret(
                    credential, datetime.timedelta(seconds=grace)
                )
                audit.record("rotate", credential, reason="apiauth_rotatehmac", grace=grace)
        except RevokedCredential:
            raise CommandError(f"{credential.access_key_id} is revoked.") from None
        self.stdout.write(
            f"Rotated {credential.access_key_id} ({printable(credential.name)}); the previous "
            f"secret verifies for {grace} s more. New secret, shown once:"
        )
        self.stdout.write(f"{credential.access_key_id} {secret}")
