"""OAuth 2.0 client authentication at the token endpoint (RFC 6749 §2.3, RFC 8414's names):
``client_secret_basic`` (HTTP Basic), ``client_secret_post`` (``client_id`` and
``client_secret`` in the body) and ``none`` (a public client names itself with ``client_id``
and proves the grant with PKCE instead)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from django.utils.translation import gettext as _
from rest_framework.request import Request

from apiauth.authentication.base import CredentialAuthentication, Refused
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.models import Application
from apiauth.models.oauth import CLIENT_ID_PREFIX

MAX_CLIENT_ID = 64
MAX_CLIENT_SECRET = 200


@dataclass(frozen=True, slots=True)
class ClientClaim:
    client_id: str
    secret: str | None
    """``None`` for a public client (``none``): it proves the grant with PKCE."""


class OAuthClientAuthentication(CredentialAuthentication[ClientClaim]):
    """An application authenticating itself to the token endpoint."""

    kind = "oauth_app"
    keyword = "Basic"

    def claim(self, request: Request) -> ClientClaim | None:
        found: list[ClientClaim] = []
        authorization = str(request._request.META.get("HTTP_AUTHORIZATION", ""))
        scheme, _sep, value = authorization.strip().partition(" ")
        if scheme.lower() == "basic":
            found.append(self.parse_basic(value.strip()))
        data = request.data if hasattr(request.data, "getlist") else {}
        client_ids = data.getlist("client_id") if data else []
        secrets = data.getlist("client_secret") if data else []
        if len(client_ids) > 1 or len(secrets) > 1:
            raise Refused("malformed", _("A client parameter was sent more than once."))
        if secrets:
            if not client_ids:
                raise Refused("malformed", _("A client secret was sent without its client_id."))
            found.append(ClientClaim(client_ids[0], secrets[0]))
        elif client_ids and not found:
            if not client_ids[0].startswith(CLIENT_ID_PREFIX):
                return None  # an API key's client authenticates with its key
            found.append(ClientClaim(client_ids[0], None))
        if not found:
            return None
        if len(found) > 1:
            raise Refused("ambiguous", _("Use one client authentication method, not several."))
        claim = found[0]
        if client_ids and client_ids[0] != claim.client_id:
            raise Refused("ambiguous", _("The client_id does not match the authenticated client."))
        return claim

    def parse_basic(self, value: str) -> ClientClaim:
        """RFC 6749 §2.3.1: the id and secret are form-urlencoded, then joined by a colon."""
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise Refused("malformed", _("Malformed HTTP Basic credentials.")) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            raise Refused("malformed", _("Malformed HTTP Basic credentials."))
        return ClientClaim(unquote(client_id), unquote(secret))

    def authenticate_claim(self, request: Request, claim: ClientClaim) -> tuple[Any, Credential]:
        client_id = claim.client_id
        if len(client_id) > MAX_CLIENT_ID or not client_id.isascii() or not client_id:
            raise Refused("malformed", _("Malformed client_id."))
        app = Application.objects.get_by_client_id(client_id)
        if app is None:
            raise Refused("unknown_client", _("Unknown client."), client_id[:32])
        if app.confidential:
            if claim.secret is None or not app.check_secret(claim.secret[:MAX_CLIENT_SECRET]):
                raise Refused("bad_secret", _("Client authentication failed."), app.client_id)
        elif claim.secret is not None:
            raise Refused(
                "public_client", _("A public client has no secret to send."), app.client_id
            )
        self.validate_credential(request, app, app.client_id)
        request._request.apiauth_client = app  # type: ignore[attr-defined]
        credential = app.to_credential()
        return self.get_user(app, credential), credential

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{conf.REALM}"'
