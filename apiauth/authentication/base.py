"""What the three schemes share: one template method, and every refusal recorded once.

:meth:`CredentialAuthentication.authenticate` claims the request (``None``: not this scheme's,
the next class tries), checks the failed-authentication lockout, authenticates the claim, and
turns any :class:`Refused` raised on the way into the response's exception, auditing it and
debiting the client address's failed-authentication bucket exactly once.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Generic, TypeVar

from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apiauth import audit, revocation
from apiauth.cache import CredentialCache, Entry
from apiauth.conf import conf
from apiauth.credentials import (
    Credential,
    MachinePrincipal,
    claim_made,
    claimed,
    remember_claim,
    with_owner,
)
from apiauth.errors import AuthenticationFailed, ReplayCheckUnavailable, TooManyFailures
from apiauth.models import private_copy
from apiauth.net import get_client_ip, in_networks
from apiauth.store import (
    Check,
    ClaimTaken,
    MarksUnloaded,
    StaleCredential,
    StoreUnavailable,
    TokenRevoked,
    get_store,
)
from apiauth.throttling import lockout
from apiauth.throttling.limiter import Outcome, decide, remember
from apiauth.throttling.throttle import TokenBucketThrottle

REFRESH_ATTR = "_apiauth_refresh"

T = TypeVar("T")
ClaimT = TypeVar("ClaimT")


def confirm_only(check: Check | None) -> None:
    """Ask the store to confirm ``check`` alone, in one round trip: no limit, nothing
    debited. Raises ``StaleCredential``, ``TokenRevoked`` or ``MarksUnloaded``."""
    # No limits: the identity and the cost are never read.
    decide("", (), (), 1, check=check)  # pragma: no mutate


@functools.cache
def _drf_get_throttles() -> Any:
    """``APIView.get_throttles``, imported on first use: DRF's settings import us."""
    from rest_framework.views import APIView

    return APIView.get_throttles


class Refused(Exception):
    """A scheme refuses the credential it claimed: ``code`` names why (audit, problem+json),
    ``detail`` is for the client. ``forbidden``: a valid credential used where it may not be
    (403, audited, but no failed authentication)."""

    def __init__(
        self, code: str, detail: str, credential_id: str | None = None, *, forbidden: bool = False
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.credential_id = credential_id
        self.forbidden = forbidden


class CredentialAuthentication(BaseAuthentication, Generic[ClaimT]):
    """Shared steps: the template method, lockout, lifecycle and network rules, the cached
    copy's confirmation, and the ``(user, Credential)`` pair.

    A scheme implements :meth:`claim` and :meth:`authenticate_claim`; anything in them may
    raise :class:`Refused`.
    """

    kind = "credential"
    keyword = "Credential"

    def authenticate(self, request: Request) -> tuple[Any, Credential] | None:
        try:
            claim = self.claim(request)
            if claim is None:
                return None
            self.check_lockout(request)
            return self.authenticate_claim(request, claim)
        except Refused as refusal:
            raise self.refuse(request, refusal) from None

    def claim(self, request: Request) -> ClaimT | None:
        """What the request presents of this scheme, or ``None`` when it presents nothing."""
        raise NotImplementedError

    def authenticate_claim(self, request: Request, claim: ClaimT) -> tuple[Any, Credential]:
        """The ``(user, credential)`` pair for a claimed credential, or :class:`Refused`."""
        raise NotImplementedError

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="{conf.REALM}"'

    def refuse(self, request: Request, refusal: Refused) -> exceptions.APIException:
        """The exception for a refusal, recorded once: audited, and a failed authentication
        debited from the client address (a 403 is audited only)."""
        if refusal.forbidden:
            audit.auth_failure(
                refusal.code,
                kind=self.kind,
                credential_id=refusal.credential_id,
                client_ip=get_client_ip(request),
            )
            return exceptions.PermissionDenied(refusal.detail, code=refusal.code)
        return self.fail(request, refusal.code, refusal.detail, refusal.credential_id)

    def fail(
        self, request: Request, code: str, detail: str, credential_id: str | None = None
    ) -> exceptions.APIException:
        """Audit a failure and debit it from the client address's failed-auth bucket.

        Returns the exception to raise: a 401, or a 429 while the address is locked out. A
        failure during a lock this worker knows of costs no round trip and is counted in a
        summary log line instead of one line each. Schemes override it to shape their 401.
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

    def refusal(self, request: Request, obj: Any) -> str | None:
        """Which lifecycle or network rule refuses ``obj``: ``"revoked"``, ``"expired"``,
        ``"owner_inactive"``, ``"ip_not_allowed"``, or ``None``."""
        if obj.is_revoked:
            return "revoked"
        if obj.is_expired:
            return "expired"
        owner = obj.owner
        if owner is not None and not owner.is_active:
            return "owner_inactive"
        if obj.allowed_networks and not in_networks(get_client_ip(request), obj.allowed_networks):
            return "ip_not_allowed"
        return None

    def validate_credential(self, request: Request, obj: Any, credential_id: str) -> None:
        """Revoked → expired → owner inactive → client address outside the allowlist."""
        reason = self.refusal(request, obj)
        if reason == "revoked":
            raise Refused("revoked", _("This credential has been revoked."), credential_id)
        if reason == "expired":
            raise Refused("expired", _("This credential has expired."), credential_id)
        if reason == "owner_inactive":
            detail = _("This credential's owner is inactive.")
            raise Refused("owner_inactive", detail, credential_id)
        if reason == "ip_not_allowed":
            detail = _("This credential may not be used from your address.")
            raise Refused("ip_not_allowed", detail, credential_id, forbidden=True)

    def validate_copy(self, request: Request, entry: Entry[Any], credential_id: str) -> bool:
        """:meth:`validate_credential` on a (possibly cached) copy; ``False`` when the copy
        was refused but turned out stale (:meth:`refused_copy_is_stale`): authenticate again
        from the database. Accepted copies, nearly all, pay for the rules once."""
        try:
            self.validate_credential(request, entry.obj, credential_id)
        except Refused:
            if self.refused_copy_is_stale(request, entry):
                return False
            raise
        return True

    def refused_copy_is_stale(self, request: Request, entry: Entry[Any]) -> bool:
        """Whether a worker's copy that would be refused is out of date (one round trip): a
        refusal must not outlive the change that undid it (an owner reactivated, an expiry
        pushed back, an allowlist widened), any more than an acceptance outlives a revocation.
        Revocation is final: a revoked copy is never confirmed."""
        check = entry.check
        if check is None or self.refusal(request, entry.obj) in (None, "revoked"):
            return False
        try:
            confirm_only(Check(key=check.key, token=check.token))
        except StaleCredential:
            return True
        return False

    def record_use(self, request: Request, obj: Any) -> None:
        """Record ``obj``'s use after the response, at most once per ``LAST_USED_INTERVAL``:
        the client's address is worked out only for the use recorded."""
        if obj.touch_is_due():
            obj.touch(get_client_ip(request), defer=True)

    def get_user(self, obj: Any, credential: Credential) -> Any:
        return credential.owner if credential.owner is not None else MachinePrincipal(credential)

    def accept(
        self,
        request: Request,
        entry: Entry[Any],
        credential_id: str,
        *,
        claim: str = "",
        claim_ttl_ms: int = 0,
    ) -> tuple[Any, Credential]:
        """Validate the (possibly cached) row, record its use, build the pair, and make sure
        a cached copy is confirmed in Redis before the view runs.

        ``claim``: a key the request must be the first to create in ``claim_ttl_ms`` (a signed
        write's replay claim, in the credential's lineage slot): see :meth:`claim_once`."""
        if not self.validate_copy(request, entry, credential_id):
            return self.reauthenticate(request)
        obj = entry.obj
        self.record_use(request, obj)
        credential = entry.credential
        if credential is None:
            # Built once per copy, with the copy's own owner: never handed out as it is.
            credential = entry.credential = obj.to_credential(check=entry.check, owner=obj.owner)
        if credential.owner is not None:
            credential = with_owner(credential, private_copy(credential.owner))
        if claim:
            credential = self.claim_once(request, credential, claim, claim_ttl_ms)
        if credential.check is not None and not self.check_is_deferred(request):
            credential = self.confirm(request, credential)
        return self.get_user(obj, credential), credential

    def claim_once(
        self, request: Request, credential: Credential, key: str, ttl_ms: int
    ) -> Credential:
        """Make the request's claim once. With a copy to confirm, it rides in the round trip
        that confirms it (the throttle's, else :meth:`confirm`'s); the script makes it only
        after the copy stood, so a stale copy's authentication again claims anew. Without
        one, it is its own round trip. Either way, once made, it is remembered on the request
        (:func:`~apiauth.credentials.claim_made`): a request authenticated again (after a
        stale copy, or handed on to another view) is not its own replay."""
        if claimed(request):
            return credential
        if credential.check is not None:
            check = dataclasses.replace(credential.check, claim=key, claim_ttl_ms=ttl_ms)
            return dataclasses.replace(credential, check=check)
        remember_claim(request)
        try:
            first = get_store().claim(key, ttl_ms)
        except StoreUnavailable:
            raise ReplayCheckUnavailable() from None
        if not first:
            raise self.replayed_refusal(credential)
        return credential

    def check_is_deferred(self, request: Request) -> bool:
        """Whether the view's :class:`TokenBucketThrottle` will confirm a cached credential in
        its own round trip. DRF runs throttles before the handler, so no view code runs on an
        unconfirmed copy; without that throttle, :meth:`confirm` asks Redis now."""
        view = (request.parser_context or {}).get("view")
        get_throttles = getattr(view, "get_throttles", None)
        if get_throttles is None:
            return False
        if getattr(type(view), "get_throttles", None) is _drf_get_throttles():
            # DRF's own: the classes tell, without building the throttles twice.
            for cls in getattr(view, "throttle_classes", ()):
                if isinstance(cls, type) and issubclass(cls, TokenBucketThrottle):
                    return True
            return False
        return any(isinstance(throttle, TokenBucketThrottle) for throttle in get_throttles())

    def confirm(self, request: Request, credential: Credential) -> Credential:
        """Confirm a cached credential's version and a token's revocation marks in Redis (one
        round trip, no bucket)."""
        try:
            try:
                confirm_only(credential.check)
            except MarksUnloaded:
                assert credential.check is not None
                credential = dataclasses.replace(
                    credential, check=revocation.settle(credential.check)
                )
                confirm_only(credential.check)
        except StaleCredential:
            return self.reauthenticate(request)[1]
        except TokenRevoked:
            raise self.revoked_refusal(credential) from None
        except ClaimTaken:
            raise self.replayed_refusal(credential) from None
        claim_made(request, credential)
        return credential

    def revoked(self, request: Request, credential: Credential) -> exceptions.APIException:
        """The exception for a credential that a revocation mark covers (found by the
        throttle's round trip: see :class:`~apiauth.credentials.Confirmable`)."""
        return self.refuse(request, self.revoked_refusal(credential))

    def replayed(self, request: Request, credential: Credential) -> exceptions.APIException:
        """The exception for a request whose claim (:attr:`apiauth.store.Check.claim`) the
        throttle's round trip found made before."""
        return self.refuse(request, self.replayed_refusal(credential))

    def replayed_refusal(self, credential: Credential) -> Refused:
        """What a request whose claim was made before is refused as."""
        detail = _("This request was already received; send each request anew.")
        return Refused("replayed", detail, credential.id)

    def revoked_refusal(self, credential: Credential) -> Refused:
        """What a revocation mark covering ``credential`` is refused as."""
        return Refused("revoked", _("This credential has been revoked."), credential.id)

    def cached(self, request: Request, cache: CredentialCache[T], value: str) -> Entry[T] | None:
        """The worker's copy of a credential, else the database (which fills the copy); after
        a copy turned out stale (:meth:`reauthenticate`), always the database."""
        if not request.__dict__.get(REFRESH_ATTR, False):
            return cache.get(value)
        entry = cache.fill(value)
        return None if entry is None else Entry(entry.obj, None, entry.expires)

    def reauthenticate(self, request: Request) -> tuple[Any, Credential]:
        """Authenticate again from the database, after a cached copy turned out stale."""
        setattr(request, REFRESH_ATTR, True)
        result = self.authenticate(request)
        if result is None:  # pragma: no cover (the request presented a credential before)
            raise AuthenticationFailed("", code="unknown")  # pragma: no mutate (unreachable)
        return result
