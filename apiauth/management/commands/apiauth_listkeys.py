"""``apiauth_listkeys``: the keys as a table or JSON. Never prints a secret or a digest."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import QuerySet

from apiauth.management.commands import printable
from apiauth.models import APIKey

COLUMNS = ("public_id", "name", "owner", "scopes", "plan", "status", "expires_at", "last_used_at")


class Command(BaseCommand):
    help = "List API keys (no secrets)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--status", choices=["all", "active", "expired", "revoked"], default="all"
        )
        parser.add_argument("--json", action="store_true", help="Machine-readable output.")

    def get_queryset(self, status: str) -> QuerySet[APIKey]:
        keys = APIKey.objects.get_queryset().select_related("owner").order_by("created_at")
        if status == "active":
            return keys.usable()
        if status == "expired":
            return keys.expired()
        if status == "revoked":
            return keys.revoked()
        return keys

    def handle(self, *args: Any, **options: Any) -> None:
        rows = [self.row(key) for key in self.get_queryset(options["status"])]
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        table = [[printable(str(row[column] or "-")) for column in COLUMNS] for row in rows]
        table = [[column.replace("_", " ") for column in COLUMNS], *table]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        for line in table:
            self.stdout.write(
                "  ".join(
                    cell.ljust(width) for cell, width in zip(line, widths, strict=True)
                ).rstrip()
            )

    def row(self, key: APIKey) -> dict[str, Any]:
        return {
            "public_id": key.public_id,
            "name": key.name,
            "owner": key.owner.get_username() if key.owner else None,
            "scopes": " ".join(key.scopes),
            "plan": key.plan or None,
            "status": key.status,
            "expires_at": key.expires_at.isoformat() if key.expires_at else None,
            "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        }
