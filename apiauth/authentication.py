"""DRF authentication classes.

Each follows DRF's contract: ``None`` when the request carries no credential of its kind (the
next class tries), :class:`~apiauth.errors.AuthenticationFailed` (401) for a bad one, and
``(user, Credential)`` for a good one. ``authenticate`` is a pipeline of small hooks so a
subclass overrides one step, not the whole method.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from django.core.exceptions import RequestDataTooBig
from django.utils import timezone
from django.utils.http import http_date
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from apiauth import audit, crypto, issuers, jose, revocation, sigv4
from apiauth.cache import CredentialCache, Entry, client_cache, hmac_cache, key_cache
from apiauth.conf import conf
from apiauth.credentials import Credential, MachinePrincipal
from apiauth.errors import (
    UNCLAIMED_BEARER_ATTR,
    AuthenticationFailed,
    IssuerKeysUnavailable,
    PayloadTooLarge,
    ReplayCheckUnavailable,
    RevocationCheckUnavailable,
    TooManyFailures,
)
from apiauth.models import APIKey, HMACCredential
from apiauth.net import get_client_ip, in_networks
from apiauth.scopes import granted_scopes
from apiauth.store import (
    Check,
    MarksUnloaded,
    StaleCredential,
    StoreUnavailable,
    TokenRevoked,
    get_store,
)
from apiauth.store.keys import replay_key, version_key
from apiauth.throttling import lockout
from apiauth.throttling.limiter import Outcome, decide, remember
from apiauth.throttling.throttle import TokenBucketThrottle
from apiauth.tokens import TokenVerifier, issued_at

REFRESH_ATTR = "_apiauth_refresh"
REPLAY_ATTR = "_apiauth_replay_checked"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

T = TypeVar("T")


class AmbiguousUser(Exception):
    """More than one user matches a token's user claim."""


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
            raise self.fail(
                request, "revoked", _("This credential has been revoked."), credential_id
            )
        if reason == "expired":
            raise self.fail(request, "expired", _("This credential has expired."), credential_id)
        if reason == "owner_inactive":
            raise self.fail(
                request, "owner_inactive", _("This credential's owner is inactive."), credential_id
            )
        if reason == "ip_not_allowed":
            audit.auth_failure(
                "ip_not_allowed",
                kind=self.kind,
                credential_id=credential_id,
                client_ip=get_client_ip(request),
            )
            raise exceptions.PermissionDenied(
                _("This credential may not be used from your address."), code="ip_not_allowed"
            )

    def refused_copy_is_stale(self, request: Request, entry: Entry[Any]) -> bool:
        """Whether a worker's copy that would be refused is out of date (one round trip): a
        refusal must not outlive the change that undid it (an owner reactivated, an expiry
        pushed back, an allowlist widened), any more than an acceptance outlives a revocation.
        Revocation is final: a revoked copy is never confirmed."""
        check = entry.check
        if check is None or self.refusal(request, entry.obj) in (None, "revoked"):
            return False
        try:
            decide("", (), (), 1, check=Check(key=check.key, token=check.token))
        except StaleCredential:
            return True
        return False

    def get_user(self, obj: Any, credential: Credential) -> Any:
        return credential.owner if credential.owner is not None else MachinePrincipal(credential)

    def accept(
        self, request: Request, entry: Entry[Any], credential_id: str
    ) -> tuple[Any, Credential]:
        """Validate the (possibly cached) row, record its use, build the pair, and make sure
        a cached copy is confirmed in Redis before the view runs."""
        if self.refused_copy_is_stale(request, entry):
            return self.reauthenticate(request)
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
        from rest_framework.views import APIView  # not at import: DRF's settings import us

        if getattr(type(view), "get_throttles", None) is APIView.get_throttles:
            # DRF's own: the classes tell, without building the throttles twice.
            return any(
                isinstance(cls, type) and issubclass(cls, TokenBucketThrottle)
                for cls in getattr(view, "throttle_classes", ())
            )
        return any(isinstance(throttle, TokenBucketThrottle) for throttle in get_throttles())

    def confirm(self, request: Request, credential: Credential) -> Credential:
        """Confirm a cached credential's version and a token's revocation marks in Redis (one
        round trip, no bucket)."""
        try:
            try:
                decide("", (), (), 1, check=credential.check)
            except MarksUnloaded:
                assert credential.check is not None
                credential = dataclasses.replace(
                    credential, check=revocation.settle(credential.check)
                )
                decide("", (), (), 1, check=credential.check)
        except StaleCredential:
            return self.reauthenticate(request)[1]
        except TokenRevoked:
            raise self.revoked(request, credential) from None
        return credential

    def revoked(self, request: Request, credential: Credential) -> exceptions.APIException:
        """The exception for a credential that a revocation mark covers (checked in Redis)."""
        return self.fail(request, "revoked", _("This credential has been revoked."), credential.id)

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
        meta = request._request.META
        header = meta.get(conf.key_meta_name)
        if header is not None:
            found.append(header.strip())
        authorization = meta.get("HTTP_AUTHORIZATION", "")
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
        that fills it."""
        entry = self.cached(request, key_cache, parsed.digest)
        if entry is None:
            raise self.fail(request, "unknown", _("Invalid API key."), parsed.public_id)
        return entry


class HMACAuthentication(CredentialAuthentication):
    """Requests signed with AWS Signature Version 4 (``Authorization`` header or presigned URL).

    The scheme's names, service, regions and limits come from ``APIAUTH["HMAC"]``. Cheap
    checks run first (shape, scope, clock, signed headers), then the credential lookup (the
    worker's copy, secrets already decrypted), the body hash, the signature, the credential's
    lifecycle and network, and last the replay check of unsafe methods.
    """

    kind = "hmac"
    model = HMACCredential
    _policy: tuple[dict[str, Any], sigv4.Policy] | None = None

    @property
    def keyword(self) -> str:  # type: ignore[override]
        return str(conf.HMAC["ALGORITHM"])

    def get_policy(self) -> sigv4.Policy:
        settings = conf.HMAC
        cached = HMACAuthentication._policy
        if cached is not None and cached[0] is settings:
            return cached[1]
        policy = sigv4.Policy(
            scheme=sigv4.Scheme(
                algorithm=settings["ALGORITHM"],
                secret_prefix=settings["SECRET_PREFIX"],
                header_prefix=settings["HEADER_PREFIX"],
            ),
            service=settings["SERVICE"],
            regions=frozenset(settings["REGIONS"]),
            max_skew=int(settings["MAX_CLOCK_SKEW"]),
            max_expires=int(settings["PRESIGNED_MAX_EXPIRES"]),
            allow_unsigned_payload=bool(settings["ALLOW_UNSIGNED_PAYLOAD"]),
        )
        HMACAuthentication._policy = (settings, policy)
        return policy

    def fail(
        self, request: Request, code: str, detail: str, credential_id: str | None = None
    ) -> exceptions.APIException:
        exc = super().fail(request, code, detail, credential_id)
        # The server's clock, so a client refused for skew can correct its own.
        exc.extra_headers = {"Date": http_date()}  # type: ignore[attr-defined]
        return exc

    def authenticate(self, request: Request) -> tuple[Any, Credential] | None:
        policy = self.get_policy()
        presented = self.get_presented(request, policy)
        if presented is None:
            return None
        self.check_lockout(request)
        akid = presented.credential.access_key_id
        signed = self.get_signed_request(request, policy, presented)
        try:
            payload_hash = policy.check(presented, signed, timezone.now())
        except sigv4.SignatureError as exc:
            raise self.fail(request, exc.code, exc.detail, akid) from None
        entry = self.cached(request, hmac_cache, akid)
        if entry is None:
            raise self.fail(request, "unknown_access_key", _("Unknown access key id."), akid)
        _canonical, to_sign = policy.string_to_sign(presented, signed, payload_hash)
        if not self.signature_matches(policy, presented, to_sign, entry.obj):
            # The copy may predate a rotation: the database decides before a refusal.
            entry = hmac_cache.fill(akid) if entry.check is not None else None
            if entry is None or not self.signature_matches(policy, presented, to_sign, entry.obj):
                detail = _("The signature does not match the request.")
                raise self.fail(request, "signature_mismatch", detail, akid)
        result = self.accept(request, entry, akid)
        self.check_replay(request, policy, presented, entry.obj.access_key_id)
        return result

    def get_presented(self, request: Request, policy: sigv4.Policy) -> sigv4.Presented | None:
        meta = request.META
        authorization = meta.get("HTTP_AUTHORIZATION")
        query = meta.get("QUERY_STRING", "")
        scheme = policy.scheme
        ours = authorization is not None and authorization.partition(" ")[0] == scheme.algorithm
        if (
            not ours
            and scheme.param("Signature") not in query
            and (scheme.param("Credential") not in query)
        ):
            return None
        limit = int(conf.HMAC["MAX_HEADER_SIZE"])
        try:
            if len(authorization or "") > limit or len(query) > 4 * limit:
                raise sigv4.SignatureError("malformed", _("The signature is too large."))
            amz_date = meta.get("HTTP_" + scheme.date_header.upper().replace("-", "_"))
            presented = policy.presented(
                authorization if ours else None, amz_date, sigv4.parse_query(wire_query(request))
            )
        except sigv4.SignatureError as exc:
            raise self.fail(request, exc.code, exc.detail) from None
        if presented is not None and presented.presigned and request.method not in ("GET", "HEAD"):
            raise self.fail(
                request,
                "presigned_method",
                _("Presigned URLs are for GET and HEAD requests."),
                presented.credential.access_key_id,
            )
        return presented

    def get_signed_request(
        self, request: Request, policy: sigv4.Policy, presented: sigv4.Presented
    ) -> sigv4.SignedRequest:
        akid = presented.credential.access_key_id
        path = wire_path(request)
        if sigv4.normalize_path(path) != path:
            # The signature would cover the normalised path while Django routes this one.
            raise self.fail(
                request,
                "non_canonical_path",
                _("Paths with '.', '..' or empty segments cannot be signed."),
                akid,
            )
        try:
            headers = request_headers(request, presented, policy.scheme)
        except sigv4.SignatureError as exc:
            raise self.fail(request, exc.code, exc.detail, akid) from None
        except UnicodeError:
            detail = _("A header is not UTF-8.")
            raise self.fail(request, "malformed_header", detail, akid) from None
        if not repeated_in_order(presented.query):
            detail = _("Send a repeated query parameter's values in sorted order.")
            raise self.fail(request, "malformed_query", detail, akid)
        limit = int(conf.HMAC["MAX_HEADER_SIZE"])
        if any(len(v) > limit for values in headers.values() for v in values):
            raise self.fail(request, "malformed_header", _("A signed header is too large."), akid)
        return sigv4.SignedRequest(
            method=request.method or "GET",
            path=path,
            headers=headers,
            body_sha256=self.body_sha256(request),
        )

    def body_sha256(self, request: Request) -> str:
        """SHA-256 of the body as received: computed here, never taken from the client."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            # Django would raise reading the body (a 500): the request is malformed (RFC 9110
            # §8.6). Servers that parse HTTP themselves refuse it before it gets here.
            detail = _("The Content-Length header is not a number.")
            raise exceptions.ParseError(detail, code="malformed_content_length") from None
        if length > int(conf.HMAC["MAX_BODY_SIZE"]):
            raise PayloadTooLarge()
        try:
            body = request._request.body
        except RequestDataTooBig:
            raise PayloadTooLarge() from None
        if len(body) > int(conf.HMAC["MAX_BODY_SIZE"]):
            raise PayloadTooLarge()
        return hashlib.sha256(body).hexdigest()

    def signature_matches(
        self,
        policy: sigv4.Policy,
        presented: sigv4.Presented,
        to_sign: str,
        obj: HMACCredential,
    ) -> bool:
        credential = presented.credential
        keys = obj.signing_keys(
            policy.scheme, credential.date, credential.region, credential.service
        )
        # Each key is tried, even after a match: the time taken does not say which one matched.
        matched = [policy.matches(presented, to_sign, key) for key in keys]
        return any(matched)

    def check_replay(
        self, request: Request, policy: sigv4.Policy, presented: sigv4.Presented, akid: str
    ) -> None:
        """An unsafe request's signature is accepted once (``SET NX``, kept twice the clock
        window, after which the date check refuses it anyway). Safe methods may be retried."""
        if request.method in SAFE_METHODS or not conf.HMAC["REPLAY_PROTECTION"]:
            return
        if getattr(request._request, REPLAY_ATTR, False):
            return  # authenticated again after a stale copy: this request claimed it already
        setattr(request._request, REPLAY_ATTR, True)
        # The stored id, not the one sent: under a case-insensitive collation one signature
        # must not be claimable under two spellings of the id.
        key = replay_key(akid, presented.signature)
        try:
            first = get_store().claim(key, 2 * policy.max_skew * 1000)
        except StoreUnavailable:
            raise ReplayCheckUnavailable() from None
        if not first:
            raise self.fail(
                request,
                "replayed",
                _("This signed request was already received; sign each request anew."),
                presented.credential.access_key_id,
            )


class JWTAuthentication(CredentialAuthentication):
    """Bearer JWTs from the issuers in ``APIAUTH["JWT"]["ISSUERS"]`` (RFC 6750, RFC 9068).

    A bearer value with our API-key prefix, or not shaped like a compact JWS, is not ours.
    Verification needs no I/O but a key lookup (our key ring or an identity provider's cached
    JWKS); a token we issued then resolves its API key from the worker's copy, so it costs no
    SQL query, and its revocation marks ride the rate limiter's Redis round trip.
    """

    kind = "jwt"
    keyword = "Bearer"
    verifier = TokenVerifier()

    def authenticate_header(self, request: Request) -> str:
        return f'Bearer realm="{conf.REALM}"'

    def fail(
        self, request: Request, code: str, detail: str, credential_id: str | None = None
    ) -> exceptions.APIException:
        exc = super().fail(request, code, detail, credential_id)
        if isinstance(exc, AuthenticationFailed):
            # RFC 6750 §3: error_description is printable ASCII without quote or backslash.
            text = "".join(c for c in detail if " " <= c <= "~" and c not in '"\\')
            exc.challenge = (
                f'Bearer realm="{conf.REALM}", error="invalid_token", error_description="{text}"'
            )
        return exc

    def authenticate(self, request: Request) -> tuple[Any, Credential] | None:
        token = self.get_token(request)
        if token is None:
            return None
        self.check_lockout(request)
        issuer, claims = self.verify(request, token)
        return self.get_principal(request, issuer, claims)

    def get_token(self, request: Request) -> str | None:
        """The bearer token, or ``None`` when the request carries none of ours."""
        authorization = str(request.META.get("HTTP_AUTHORIZATION", ""))
        scheme, _sep, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if crypto.looks_like_key(token, conf.KEY_PREFIX):
            return None  # an API key: APIKeyAuthentication's
        if not jose.looks_like_jws(token, int(conf.JWT["MAX_TOKEN_LENGTH"])):
            # Not ours (a later class may take it); if none does, the 401 says it is malformed.
            setattr(request._request, UNCLAIMED_BEARER_ATTR, bool(token))
            return None
        return token

    def verify(self, request: Request, token: str) -> tuple[issuers.Issuer, dict[str, Any]]:
        """The issuer and claims of a valid token (``verifier`` does the work)."""
        try:
            verified = self.verifier.verify(token)
        except jose.TokenError as exc:
            raise self.fail(request, exc.code, exc.detail) from None
        except issuers.KeysUnavailable:
            raise IssuerKeysUnavailable() from None
        return verified.issuer, verified.claims

    def get_principal(
        self, request: Request, issuer: issuers.Issuer, claims: dict[str, Any]
    ) -> tuple[Any, Credential]:
        """A token we issued acts as its API key; another issuer's as a user or a machine."""
        if issuer.local:
            return self.client_principal(request, claims)
        return self.external_principal(request, issuer, claims)

    def client_principal(self, request: Request, claims: dict[str, Any]) -> tuple[Any, Credential]:
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or not crypto.PUBLIC_ID_RE.fullmatch(client_id):
            raise self.fail(request, "invalid_claim", _("The token names no client."))
        entry = self.cached(request, client_cache, client_id)
        if entry is None:
            raise self.fail(
                request, "unknown_client", _("The token's client is unknown."), client_id
            )
        if self.refused_copy_is_stale(request, entry):
            return self.reauthenticate(request)
        key = entry.obj
        # The key's state decides: revoking it, rolling it past its grace or its expiry ends
        # every token obtained with it, as does its owner's deactivation.
        self.validate_credential(request, key, client_id)
        key.touch(get_client_ip(request), defer=True)
        lineage = key.lineage_id
        check = entry.check
        # The key's own credential (owner, plan, limits, lineage), as a token of it.
        credential = key.to_credential(
            kind=self.kind,
            scopes=frozenset(granted_scopes(jose.scopes(claims), key.scopes)),
            expires_at=_earliest(key.expires_at, claims["exp"]),
            check=revocation.check_for(
                lineage,
                claims,
                issued_at(claims),
                key=check.key if check is not None else version_key(lineage),
                token=check.token if check is not None else "",
            ),
        )
        return self.finish(request, credential)

    def external_principal(
        self, request: Request, issuer: issuers.Issuer, claims: dict[str, Any]
    ) -> tuple[Any, Credential]:
        subject = claims.get(issuer.user_claim)
        if not isinstance(subject, str) or not subject:
            raise self.fail(request, "missing_claim", _("The token names no subject."))
        user = None
        if issuer.user_field is not None:
            try:
                user = self.get_user_for_claims(issuer, claims)
            except AmbiguousUser:
                raise self.fail(
                    request, "ambiguous_user", _("The token names more than one user.")
                ) from None
            if user is None:
                raise self.fail(request, "unknown_user", _("The token's user is unknown."))
            if not user.is_active:
                raise self.fail(request, "owner_inactive", _("The token's user is inactive."))
            lineage = revocation.user_lineage(user.pk)
        else:
            lineage = revocation.subject_lineage(issuer.iss, subject)
        # Another issuer's clock may run up to LEEWAY ahead of ours (its iat is accepted that
        # far in the future): a "revoked before" mark covers its tokens that far too.
        issued_at = float(claims.get("iat", 0)) - issuer.policy.leeway
        credential = Credential(
            kind=self.kind,
            id=subject[:64],
            scopes=jose.scopes(claims),
            plan=issuer.plan or conf.DEFAULT_PLAN,
            owner=user,
            expires_at=_earliest(None, claims.get("exp")),
            lineage=lineage,
            check=revocation.check_for(
                lineage, claims, issued_at, key=version_key(lineage), token=""
            ),
        )
        return self.finish(request, credential)

    def get_user_for_claims(self, issuer: issuers.Issuer, claims: dict[str, Any]) -> Any:
        """The user the token names: ``USER_FIELD`` equal to the ``USER_CLAIM`` claim (one
        query), ``None`` for nobody; raises :class:`AmbiguousUser` when several users match (a
        field that is not unique, such as an email address, must never pick one of them).
        Override to map identities differently (create users on first sight, ...)."""
        from django.contrib.auth import get_user_model

        model = get_user_model()
        value = claims[issuer.user_claim]
        found = list(model._default_manager.filter(**{str(issuer.user_field): value})[:2])
        if len(found) > 1:
            raise AmbiguousUser(issuer.user_field)
        return found[0] if found else None

    def finish(self, request: Request, credential: Credential) -> tuple[Any, Credential]:
        """Check revocation now unless the throttle's round trip will (see ``confirm``)."""
        if request.__dict__.get(REFRESH_ATTR, False):
            credential = self.check_revocation(request, credential)
        elif not self.check_is_deferred(request):
            credential = self.confirm(request, credential)
        return self.get_user(None, credential), credential

    def check_revocation(self, request: Request, credential: Credential) -> Credential:
        """Ask the store directly, after the throttle's check could not (a stale copy, or the
        store unreachable); when it cannot answer, ``REVOCATION_FAILURE_MODE`` decides: the
        database (the source of truth, one query), a 503, or accept."""
        check = credential.check
        assert check is not None
        try:
            revoked = revocation.is_revoked(check.lineage, check.marks, check.issued_at)
        except StoreUnavailable:
            mode = conf.JWT["REVOCATION_FAILURE_MODE"]
            if mode == "database":
                revoked = revocation.revoked_in_database(
                    check.lineage, check.marks, check.issued_at
                )
            elif mode == "closed":
                raise RevocationCheckUnavailable() from None
            else:
                revocation.logger.warning("token revocation unchecked: the store is unavailable")
                revoked = False
        if revoked:
            raise self.revoked(request, credential)
        return dataclasses.replace(credential, check=None)

    def revoked(self, request: Request, credential: Credential) -> exceptions.APIException:
        return self.fail(request, "revoked", _("This token has been revoked."), credential.id)


def _earliest(expires_at: Any, exp: Any) -> Any:
    moment = datetime.datetime.fromtimestamp(float(exp), tz=datetime.UTC) if exp else None
    if expires_at is None or moment is None:
        return expires_at or moment
    return min(expires_at, moment)


def repeated_in_order(pairs: list[tuple[bytes, bytes]]) -> bool:
    """Whether every repeated parameter's values come in canonical (sorted) order.

    SigV4 sorts the query before signing, so the order of a parameter's values is not signed,
    while ``request.GET[name]`` reads the last one: reordering them after signing would change
    what the view reads. Sending them sorted makes the order sent the order signed.
    """
    seen: dict[bytes, str] = {}
    for name, value in pairs:
        encoded = quote(value, safe="~")
        previous = seen.get(name)
        if previous is not None and encoded < previous:
            return False
        seen[name] = encoded
    return True


def _two_spellings() -> sigv4.SignatureError:
    return sigv4.SignatureError("malformed_header", _("A header is sent under two spellings."))


def _wsgi_bytes(value: str) -> bytes:
    """WSGI hands over the request's bytes as latin-1 text (PEP 3333)."""
    return value.encode("latin-1")


def wire_path(request: Request) -> bytes:
    """The path as the client sent it, still percent-encoded: gunicorn's ``RAW_URI``,
    uwsgi's ``REQUEST_URI``, ASGI's ``raw_path``; else the decoded path encoded again."""
    meta = request.META
    raw = meta.get("RAW_URI") or meta.get("REQUEST_URI")
    if raw:
        path = raw.split("?", 1)[0]
        if "://" in path[:8]:  # absolute-form request target
            path = urlsplit(path).path
        return _wsgi_bytes(path or "/")
    raw_path = _scope_bytes(request, "raw_path")
    if raw_path is not None:
        return raw_path or b"/"
    decoded = _wsgi_bytes(meta.get("SCRIPT_NAME", "") + meta.get("PATH_INFO", "/"))
    return quote(decoded, safe="/~").encode("ascii")


def wire_query(request: Request) -> bytes:
    """The query string as the client sent it: ASGI's bytes (Django hands them on decoded as
    UTF-8), else WSGI's latin-1 text encoded back."""
    query = _scope_bytes(request, "query_string")
    if query is not None:
        return query
    return _wsgi_bytes(request.META.get("QUERY_STRING", ""))


def _scope_bytes(request: Request, name: str) -> bytes | None:
    """A raw value of the request's ASGI scope, when the app runs under ASGI."""
    scope = getattr(request._request, "scope", None)
    value = scope.get(name) if isinstance(scope, dict) else None
    return value if isinstance(value, bytes) else None


def request_headers(
    request: Request, presented: sigv4.Presented, scheme: sigv4.Scheme
) -> dict[str, list[str]]:
    """The headers the policy looks at (signed ones, the scheme's own, ``content-type``),
    lowercased. Repeated headers arrive joined with ``,``, as SigV4 joins them."""
    meta = request.META
    prefix = scheme.header_prefix.lower()
    wanted = set(presented.signed_headers) | {"content-type"}
    headers: dict[str, list[str]] = {}
    for name, value in meta.items():
        if name.startswith("HTTP_"):
            if name in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                # A "Content_Type:" header, where the server passes underscores: never the
                # Content-Type that Django parses the body with (CONTENT_TYPE).
                raise _two_spellings()
            header = name[5:].lower().replace("_", "-")
        elif name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            header = name.lower().replace("_", "-")
        else:
            continue
        if header == "authorization":
            continue
        if header in wanted or header.startswith(prefix):
            if header in ("content-type", "content-length") and not value:
                continue  # WSGI servers set these empty when the client sent none
            if header in headers:
                # Two spellings of one header (X-Amz-Date, X_Amz_Date) cannot both be signed.
                raise _two_spellings()
            headers[header] = [_wsgi_bytes(value).decode("utf-8")]
    return headers
