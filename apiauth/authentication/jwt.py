"""Bearer JWTs (RFC 6750, RFC 9068) from the issuers in ``APIAUTH["JWT"]["ISSUERS"]``."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from rest_framework import exceptions
from rest_framework.request import Request

from apiauth import crypto, issuers, jose, revocation, verification
from apiauth.authentication.base import REFRESH_ATTR, CredentialAuthentication, Refused
from apiauth.cache import CredentialCache, application_cache, client_cache
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.errors import (
    UNCLAIMED_BEARER_ATTR,
    AuthenticationFailed,
    IssuerKeysUnavailable,
    RevocationCheckUnavailable,
)
from apiauth.models import APIKey, Application
from apiauth.models.oauth import CLIENT_ID_PREFIX
from apiauth.scopes import granted_scopes
from apiauth.store import StoreUnavailable
from apiauth.store.keys import version_key
from apiauth.verification import TokenVerifier, issued_at


class AmbiguousUser(Exception):
    """More than one user matches a token's user claim."""


class JWTAuthentication(CredentialAuthentication[str]):
    """Bearer JWTs from the issuers in ``APIAUTH["JWT"]["ISSUERS"]`` (RFC 6750, RFC 9068).

    A bearer value with our API-key prefix, or not shaped like a compact JWS, is not ours.
    Verification needs no I/O but a key lookup (our key ring or an identity provider's cached
    JWKS); a token we issued then resolves its API key from the worker's copy, so it costs no
    SQL query, and its revocation marks ride the rate limiter's Redis round trip.
    """

    kind = "jwt"
    keyword = "Bearer"
    verifier: TokenVerifier = verification.verifier
    """Shared with the token endpoints (introspection, revocation); set your own here."""
    clients: CredentialCache[APIKey] = client_cache
    """The worker's copies of the API keys our tokens name, by public id."""
    applications: CredentialCache[Application] = application_cache
    """The worker's copies of the applications people's tokens name, by client id."""

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

    def claim(self, request: Request) -> str | None:
        return self.get_token(request)

    def authenticate_claim(self, request: Request, claim: str) -> tuple[Any, Credential]:
        issuer, claims = self.verify(request, claim)
        return self.get_principal(request, issuer, claims)

    def get_token(self, request: Request) -> str | None:
        """The bearer token, or ``None`` when the request carries none of ours."""
        authorization = str(request._request.META.get("HTTP_AUTHORIZATION", ""))
        scheme, _sep, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        token = token.strip()
        if crypto.looks_like_key(token, conf.KEY_PREFIX):
            return None  # an API key: APIKeyAuthentication's
        if not jose.looks_like_jws(token, conf.jwt.max_token_length):
            # Not ours (a later class may take it); if none does, the 401 says it is malformed.
            setattr(request._request, UNCLAIMED_BEARER_ATTR, bool(token))
            return None
        return token

    def verify(self, request: Request, token: str) -> tuple[issuers.Issuer, dict[str, Any]]:
        """The issuer and claims of a valid token (``verifier`` does the work)."""
        try:
            verified = self.verifier.verify(token)
        except jose.TokenError as exc:
            raise Refused(exc.code, exc.detail) from None
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
        """A token of an API key acts as the key; a person's token (``client_id`` an
        application) acts as the person (``sub``) through the application."""
        client_id = claims.get("client_id")
        # An application's own token (client credentials) names itself in ``sub``.
        person = (
            isinstance(client_id, str)
            and client_id.startswith(CLIENT_ID_PREFIX)
            and claims.get("sub") != client_id
        )
        application = isinstance(client_id, str) and client_id.startswith(CLIENT_ID_PREFIX)
        if not isinstance(client_id, str) or not (
            len(client_id) <= 64 if application else crypto.PUBLIC_ID_RE.fullmatch(client_id)
        ):
            raise Refused("invalid_claim", _("The token names no client."))
        cache: CredentialCache[Any] = self.applications if application else self.clients
        entry = self.cached(request, cache, client_id)
        if entry is None:
            raise Refused("unknown_client", _("The token's client is unknown."), client_id)
        # The client's state decides: revoking it, rolling it past its grace or its expiry
        # ends every token obtained with it, as does its owner's deactivation.
        if not self.validate_copy(request, entry, client_id):
            return self.reauthenticate(request)
        client = entry.obj
        changes: dict[str, Any] = {}
        if person:
            user = self.get_person(claims)
            changes = {"owner": user, "partition": str(user.pk)}
        self.record_use(request, client)
        lineage = client.lineage_id
        check = entry.check
        # The client's own credential (owner, plan, limits, lineage), as a token of it.
        credential = client.to_credential(
            kind=self.kind,
            scopes=frozenset(granted_scopes(jose.scopes(claims), client.scopes)),
            expires_at=_earliest(client.expires_at, claims["exp"]),
            check=revocation.check_for(
                lineage,
                claims,
                issued_at(claims),
                key=check.key if check is not None else version_key(lineage),
                token=check.token if check is not None else "",
                person=person,
            ),
            **changes,
        )
        return self.finish(request, credential)

    def get_person(self, claims: dict[str, Any]) -> Any:
        """The user a person's token names in ``sub`` (one query): active, or refused."""
        from django.contrib.auth import get_user_model

        model = get_user_model()
        try:
            user = model._default_manager.filter(pk=claims["sub"]).first()
        except (ValueError, TypeError, ValidationError):
            user = None
        if user is None:
            raise Refused("unknown_user", _("The token's user is unknown."))
        if not user.is_active:
            raise Refused("owner_inactive", _("The token's user is inactive."))
        return user

    def external_principal(
        self, request: Request, issuer: issuers.Issuer, claims: dict[str, Any]
    ) -> tuple[Any, Credential]:
        subject = claims.get(issuer.user_claim)
        if isinstance(subject, int) and not isinstance(subject, bool):
            subject = str(subject)  # another library's integer user id (simplejwt's user_id)
        if not isinstance(subject, str) or not subject:
            raise Refused("missing_claim", _("The token names no subject."))
        user = None
        if issuer.user_field is not None:
            try:
                user = self.get_user_for_claims(issuer, claims)
            except AmbiguousUser:
                raise Refused("ambiguous_user", _("The token names more than one user.")) from None
            if user is None:
                raise Refused("unknown_user", _("The token's user is unknown."))
            if not user.is_active:
                raise Refused("owner_inactive", _("The token's user is inactive."))
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
            mode = conf.jwt.revocation_failure_mode
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
            raise self.revoked_refusal(credential)
        return dataclasses.replace(credential, check=None)

    def revoked_refusal(self, credential: Credential) -> Refused:
        return Refused("revoked", _("This token has been revoked."), credential.id)


def _earliest(expires_at: Any, exp: Any) -> Any:
    moment = datetime.datetime.fromtimestamp(float(exp), tz=datetime.UTC) if exp else None
    if expires_at is None or moment is None:
        return expires_at or moment
    return min(expires_at, moment)
