"""``apiauth_createkey``: issue an API key from scripts and CI pipelines.

Contract: the raw key is printed alone on the last line of stdout; anything else goes before it.
Bad arguments exit non-zero with a message and write nothing.

Management commands run as the operator, who holds the database credentials anyway: they are
trusted and ask no Django permission. As a guard against mistakes, a key acting as a staff user
or a superuser needs ``--allow-staff-owner``.
"""

from __future__ import annotations

import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from apiauth import audit
from apiauth.management.commands import printable
from apiauth.models import APIKey

MAX_EXPIRES_IN = 10 * 365 * 24 * 3600


def _comma_list(values: list[str] | None) -> list[str]:
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Issue an API key. The raw key is printed alone on the last line of stdout."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument("--owner", help="Username of the owning user (default: none).")
        parser.add_argument(
            "--allow-staff-owner",
            action="store_true",
            help="Allow --owner to name a staff user or a superuser (the key acts as them).",
        )
        parser.add_argument("--scopes", default="", help="Comma-separated, e.g. orders:read,a:*")
        parser.add_argument(
            "--allow-ip",
            action="append",
            metavar="CIDR",
            help="Allowed client network; repeat or separate with commas. Default: anywhere.",
        )
        expiry = parser.add_mutually_exclusive_group()
        expiry.add_argument("--expires-in", type=int, metavar="SECONDS", help="Lifetime.")
        expiry.add_argument(
            "--expires",
            metavar="ISO8601",
            help="Expiry instant, e.g. 2027-01-31T00:00:00Z; without an offset it is UTC.",
        )
        parser.add_argument("--plan", default="", help="Rate-limit plan name (APIAUTH['PLANS']).")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        if not name:
            raise CommandError("--name must not be empty.")
        fields: dict[str, Any] = {
            "name": name,
            "owner": self.get_owner(options["owner"], options["allow_staff_owner"]),
            "scopes": _comma_list([options["scopes"]]),
            "allowed_networks": _comma_list(options["allow_ip"]),
            "plan": options["plan"],
            "expires_at": self.get_expiry(options["expires_in"], options["expires"]),
        }
        try:
            with transaction.atomic():
                credential, secret = self.issue(fields)
                audit.record("issue", credential, reason=self.command_name)
        except ValidationError as exc:
            messages = "; ".join(
                f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
            )
            raise CommandError(printable(messages)) from None
        self.stdout.write(
            f"Issued {credential.public_id} ({printable(credential.name)}); "
            "shown once, store it now:"
        )
        self.stdout.write(self.last_line(credential, secret))

    command_name = "apiauth_createkey"

    def issue(self, fields: dict[str, Any]) -> tuple[Any, str]:
        return APIKey.objects.create_key(**fields)

    def last_line(self, credential: Any, secret: str) -> str:
        return secret

    def get_owner(self, username: str | None, allow_staff: bool = False) -> Any:
        if not username:
            return None
        User = get_user_model()
        try:
            owner = User._default_manager.get_by_natural_key(username)
        except User.DoesNotExist:
            raise CommandError(f"No user named {printable(username)!r}.") from None
        if (owner.is_staff or owner.is_superuser) and not allow_staff:
            raise CommandError(
                f"{printable(username)!r} is a staff user or a superuser: the key would act as "
                "them. Pass --allow-staff-owner if that is what you want."
            )
        return owner

    def get_expiry(self, expires_in: int | None, expires: str | None) -> datetime.datetime | None:
        now = timezone.now()
        if expires_in is not None:
            if not 0 < expires_in <= MAX_EXPIRES_IN:
                raise CommandError(f"--expires-in must be between 1 and {MAX_EXPIRES_IN} seconds.")
            return now + datetime.timedelta(seconds=expires_in)
        if expires is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(expires.strip())
            if timezone.is_naive(moment):
                moment = moment.replace(tzinfo=datetime.UTC)
            moment = moment.astimezone(datetime.UTC)
        except (ValueError, OverflowError):
            raise CommandError(
                f"--expires {printable(expires[:40])!r} is not an ISO 8601 date-time before "
                "the year 9999."
            ) from None
        if moment <= now:
            raise CommandError("--expires must be in the future.")
        return moment
