"""``apiauth_createhmac``: issue an HMAC (SigV4) credential from scripts and CI pipelines.

Contract: ``ACCESS_KEY_ID SECRET`` (one space between) alone on the last line of stdout; the
secret is shown once and only its encryption is stored. Options as ``apiauth_createkey``.
"""

from __future__ import annotations

from typing import Any

from apiauth.management.commands.apiauth_createkey import Command as CreateKeyCommand
from apiauth.models import HMACCredential


class Command(CreateKeyCommand):
    help = (
        "Issue an HMAC credential for SigV4 request signing. The last line of stdout is "
        "'ACCESS_KEY_ID SECRET'."
    )
    command_name = "apiauth_createhmac"

    def issue(self, fields: dict[str, Any]) -> tuple[Any, str]:
        return HMACCredential.objects.create_credential(**fields)

    def last_line(self, credential: Any, secret: str) -> str:
        return f"{credential.access_key_id} {secret}"
