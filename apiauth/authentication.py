"""DRF authentication classes.

Each follows DRF's contract: ``None`` when the request carries no credential of its kind (the
next class tries), :class:`~apiauth.errors.AuthenticationFailed` (401) for a bad one, and
``(user, Credential)`` for a good one. ``authenticate`` is a pipeline of small hooks so a
subclass overrides one step, not the whole method.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apiauth import audit, crypto
from apiauth.cache import Entry
from apiauth.conf import conf
from apiauth.credentials import Credential, MachinePrincipal
from apiauth.errors import AuthenticationFailed, TooManyFailures
from apiauth.models import APIKey, key_cache
from apiauth.net import get_client_ip, in_networks
from apiauth.throttling import TokenBucketThrottle, lockout
from apiauth.throttling.backends import StaleCredential
from apiauth.throttling.limiter import Outcome, decide, remember

REFRESH_ATTR = "_apiauth_refresh"


class CredentialAuthentication(BaseAuthentication):
    """Shared steps: fail with an audit record, validate lifecycle and network, build the pair."""

    kind = "credential"
    keyword = "Credential"

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="{conf.REALM}"'

    def fail(
        self, request: Request, code: str, detail: str, credential_id: str | None = None
    ) -> exceptions.APIException:
        """Audit a failure and debit it from the client address's failed-auth bucket.

        Returns the exception to raise: a 401, or a 429 while the address is locked out. A
        failure during a lock this worker knows of costs no round trip and is counted in a
        summary log line instead of one line each.
        """
        client_ip = get_client_ip(request)
        wait = lockout.limiter.locked_for(client_ip)
        if wait is not None:
            count = lockout.limiter.count_suppressed(client_ip)
            if count:
                audit.lockout_failures(client_ip=client_ip, count=count)
            return self.locked_out(request, client_ip, wait)
        audit.auth_failure(code, kind=self.kind, credential_id=credential_id, client_ip=client_ip)
        outcome, started = lockout.limiter.record_failure(client_ip)
        remember(request._request, outcome)
        if outcome.decision is not None and not outcome.decision.allowed:
            wait = outcome.decision.retry_after_us / 1_000_000
            if started:
                audit.lockout(client_ip=client_ip, seconds=wait)
            return TooManyFailures(wait)
        return AuthenticationFailed(detail, code=code, challenge=self.authenticate_header(request))

    def check_lockout(self, request: Request) -> None:
        """In the strict ``FAILED_AUTH_LOCKOUT = "all"`` mode, refuse a locked address before
        any lookup. The default mode lets valid credentials through (see ``lockout``)."""
        if conf.FAILED_AUTH_LOCKOUT != "all":
            return
        client_ip = get_client_ip(request)
        wait = lockout.limiter.is_locked(client_ip)
        if wait is not None:
            raise self.locked_out(request, client_ip, wait)

    def locked_out(self, request: Request, client_ip: str | None, wait: float) -> TooManyFailures:
        """The 429 for a locked address, its lock's decision left for the rate-limit headers."""
        remember(request._request, Outcome(lockout.limiter.known_decision(client_ip)))
        return TooManyFailures(wait)

    def validate_credential(self, request: Request, obj: Any, credential_id: str) -> None:
        """Revoked → expired → owner inactive → client address outside the allowlist."""
        if obj.is_revoked:
            raise self.fail(
                request, "revoked", _("This credential has been revoked."), credential_id
            )
        if obj.is_expired:
            raise self.fail(request, "expired", _("This credential has expired."), credential_id)
        owner = obj.owner
        if owner is not None and not owner.is_active:
            raise self.fail(
                request, "owner_inactive", _("This credential's owner is inactive."), credential_id
            )
        if obj.allowed_networks and not in_networks(get_client_ip(request), obj.allowed_networks):
            audit.auth_failure(
                "ip_not_allowed",
                kind=self.kind,
                credential_id=credential_id,
                client_ip=get_client_ip(request),
            )
            raise exceptions.PermissionDenied(
                _("This credential may not be used from your address."), code="ip_not_allowed"
            )

    def get_user(self, obj: Any, credential: Credential) -> Any:
        return credential.owner if credential.owner is not None else MachinePrincipal(credential)

    def accept(
        self, request: Request, entry: Entry[Any], credential_id: str
    ) -> tuple[Any, Credential]:
        """Validate the (possibly cached) row, record its use, build the pair, and make sure
        a cached copy is confirmed in Redis before the view runs."""
        obj = entry.obj
        self.validate_credential(request, obj, credential_id)
        obj.touch(get_client_ip(request), defer=True)
        credential = obj.to_credential(check=entry.check)
        if credential.check is not None and not self.check_is_deferred(request):
            credential = self.confirm(request, credential)
        return self.get_user(obj, credential), credential

    def check_is_deferred(self, request: Request) -> bool:
        """Whether the view's :class:`TokenBucketThrottle` will confirm a cached credential in
        its own round trip. DRF runs throttles before the handler, so no view code runs on an
        unconfirmed copy; without that throttle, :meth:`confirm` asks Redis now."""
        view = (request.parser_context or {}).get("view")
        get_throttles = getattr(view, "get_throttles", None)
        if get_throttles is None:
            return False
        return any(isinstance(throttle, TokenBucketThrottle) for throttle in get_throttles())

    def confirm(self, request: Request, credential: Credential) -> Credential:
        """Confirm a cached credential's version in Redis (one round trip, no bucket)."""
        try:
            decide("", (), (), 1, check=credential.check)
        except StaleCredential:
            return self.reauthenticate(request)[1]
        return credential

    def reauthenticate(self, request: Request) -> tuple[Any, Credential]:
        """Authenticate again from the database, after a cached copy turned out stale."""
        setattr(request, REFRESH_ATTR, True)
        result = self.authenticate(request)
        if result is None:  # pragma: no cover (the request presented a credential before)
            raise AuthenticationFailed(_("Invalid credentials."), code="unknown")
        return result


class APIKeyAuthentication(CredentialAuthentication):
    """API keys from ``X-API-Key``, ``Authorization: Api-Key …`` or ``Authorization: Bearer …``.

    A bearer token is claimed only when it carries our key prefix, so JWT authentication placed
    after this class keeps working. The query parameter is read only when
    ``APIAUTH["KEY_QUERY_PARAM"]`` names one (it leaks into logs; a system check warns).
    """

    kind = "api_key"
    keyword = "Api-Key"
    model = APIKey

    def authenticate(self, request: Request) -> tuple[Any, Credential] | None:
        raw = self.get_raw_key(request)
        if raw is None:
            return None
        self.check_lockout(request)
        parsed = self.parse_key(request, raw)
        return self.accept(request, self.get_key(request, parsed), parsed.public_id)

    def get_raw_key(self, request: Request) -> str | None:
        """The presented key, or ``None`` when the request carries none of ours.

        Several different keys in one request are refused rather than guessed between.
        """
        prefix = conf.KEY_PREFIX
        found: list[str] = []
        header = request.META.get("HTTP_" + conf.KEY_HEADER.upper().replace("-", "_"))
        if header is not None:
            found.append(header.strip())
        authorization = request.META.get("HTTP_AUTHORIZATION", "")
        scheme, _sep, token = authorization.strip().partition(" ")
        token = token.strip()
        if (
            scheme.lower() == self.keyword.lower()
            or scheme.lower() == "bearer"
            and crypto.looks_like_key(token, prefix)
        ):
            found.append(token)
        param = conf.KEY_QUERY_PARAM
        if param and param in request.query_params:
            found.append(request.query_params[param].strip())
        if not found:
            return None
        if len(set(found)) > 1:
            raise self.fail(request, "ambiguous", _("More than one API key was presented."))
        return found[0]

    def parse_key(self, request: Request, raw: str) -> crypto.ParsedKey:
        if len(raw) > conf.MAX_CREDENTIAL_LENGTH:
            raise self.fail(request, "malformed", _("Malformed API key."))
        try:
            return crypto.parse_key(raw, conf.KEY_PREFIX)
        except crypto.MalformedKey:
            raise self.fail(request, "malformed", _("Malformed API key.")) from None

    def get_key(self, request: Request, parsed: crypto.ParsedKey) -> Entry[APIKey]:
        """The worker's copy of the key, else one indexed query by digest (the owner joined)
        that fills it. After a stale copy, always the database."""
        if getattr(request, REFRESH_ATTR, False):
            entry = key_cache.fill(parsed.digest)
            if entry is not None:
                entry = Entry(entry.obj, None, entry.expires)
        else:
            entry = key_cache.get(parsed.digest)
        if entry is None:
            raise self.fail(request, "unknown", _("Invalid API key."), parsed.public_id)
        return entry
