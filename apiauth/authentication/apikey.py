"""API keys from ``X-API-Key``, ``Authorization: Api-Key …`` or ``Authorization: Bearer …``."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework.request import Request

from apiauth import crypto
from apiauth.authentication.base import REFRESH_ATTR, CredentialAuthentication, Refused
from apiauth.cache import CredentialCache, Entry, key_cache
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.models import APIKey


class APIKeyAuthentication(CredentialAuthentication[str]):
    """API keys from ``X-API-Key``, ``Authorization: Api-Key …`` or ``Authorization: Bearer …``.

    A bearer token is claimed only when it carries our key prefix, so JWT authentication placed
    after this class keeps working. The query parameter is read only when
    ``APIAUTH["KEY_QUERY_PARAM"]`` names one (it leaks into logs; a system check warns).
    """

    kind = "api_key"
    keyword = "Api-Key"
    cache: CredentialCache[APIKey] = key_cache
    """The worker's copies of the keys, by digest (:mod:`apiauth.cache`)."""

    def claim(self, request: Request) -> str | None:
        return self.get_raw_key(request)

    def authenticate_claim(self, request: Request, claim: str) -> tuple[Any, Credential]:
        entry = self.held_copy(request, claim)
        if entry is not None:
            return self.accept(request, entry, entry.obj.public_id)
        parsed = self.parse_key(request, claim)
        return self.accept(request, self.get_key(request, parsed), parsed.public_id)

    def held_copy(self, request: Request, raw: str) -> Entry[APIKey] | None:
        """This worker's current copy of the key ``raw``, found by its digest before any
        parsing: a copy is made only for a key that parsed (shape, checksum), and SHA-256
        names one key, so the parse would tell nothing new. ``None`` when there is no copy,
        or when the request must authenticate from the database (a stale copy)."""
        if (
            len(raw) > conf.MAX_CREDENTIAL_LENGTH
            or not raw.isascii()
            or not crypto.looks_like_key(raw, conf.KEY_PREFIX)
            or request.__dict__.get(REFRESH_ATTR, False)
        ):
            return None
        return self.cache.held(crypto.hash_key(raw))

    def get_raw_key(self, request: Request) -> str | None:
        """The presented key, or ``None`` when the request carries none of ours.

        Several different keys in one request are refused rather than guessed between.
        """
        found: list[str] = []
        meta = request._request.META
        header = meta.get(conf.key_meta_name)
        if header is not None:
            found.append(header.strip())
        authorization = meta.get("HTTP_AUTHORIZATION")
        if authorization:
            scheme, _sep, token = authorization.strip().partition(" ")
            scheme, token = scheme.lower(), token.strip()
            if scheme == self.keyword.lower() or (
                scheme == "bearer" and crypto.looks_like_key(token, conf.KEY_PREFIX)
            ):
                found.append(token)
        param = conf.KEY_QUERY_PARAM
        if param and param in request.query_params:
            found.append(request.query_params[param].strip())
        if not found:
            return None
        if len(found) > 1 and len(set(found)) > 1:
            raise Refused("ambiguous", _("More than one API key was presented."))
        return found[0]

    def parse_key(self, request: Request, raw: str) -> crypto.ParsedKey:
        if len(raw) > conf.MAX_CREDENTIAL_LENGTH:
            raise Refused("malformed", _("Malformed API key."))
        try:
            return crypto.parse_key(raw, conf.KEY_PREFIX)
        except crypto.MalformedKey:
            raise Refused("malformed", _("Malformed API key.")) from None

    def get_key(self, request: Request, parsed: crypto.ParsedKey) -> Entry[APIKey]:
        """The worker's copy of the key, else one indexed query by digest (the owner joined)
        that fills it."""
        entry = self.cached(request, self.cache, parsed.digest)
        if entry is None:
            raise Refused("unknown", _("Invalid API key."), parsed.public_id)
        return entry
