"""``manage.py apiauth_publishrevocations``: write to Redis the revocation marks it missed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apiauth import revocation
from apiauth.store import StoreUnavailable


class Command(BaseCommand):
    help = (
        "Write to the store the marks of revocations saved while it was unavailable. Workers "
        "do it themselves when they reach the store again; run this after an outage in which "
        "a short-lived process (a management command, a task) revoked tokens, or from cron."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            done = revocation.publish_pending()
        except StoreUnavailable as exc:
            raise CommandError(f"The store is unavailable: {exc}") from exc
        self.stdout.write(f"{done} revocation(s) written to the store.")
