"""OAuth 2.0 endpoints for the tokens we issue, and our JWKS.

``POST token`` (RFC 6749: ``client_credentials``, ``authorization_code`` with PKCE and
``refresh_token``; no password grant), ``POST revoke`` (RFC 7009), ``POST introspect``
(RFC 7662) and ``GET .well-known/jwks.json``. Clients authenticate with an API key, as on every
other view, or as an OAuth application (``client_secret_basic``, ``client_secret_post``, or
``none`` for a public client); every endpoint is rate limited like any view. Errors are
problem+json bodies that also carry RFC 6749 §5.2's ``error`` and ``error_description``, so
OAuth client libraries read them as they expect.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views import View
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from apiauth import audit, authorization, jose, revocation, tokens, verification
from apiauth.authentication import APIKeyAuthentication, JWTAuthentication
from apiauth.authentication.oauth_client import OAuthClientAuthentication
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.issuers import KeysUnavailable
from apiauth.keyring import NoSigningKey, ring
from apiauth.models import APIKey, Application, RefreshToken
from apiauth.models.oauth import CLIENT_ID_PREFIX
from apiauth.net import get_client_ip
from apiauth.parsers import FormParser
from apiauth.permissions import HasScopes
from apiauth.scopes import granted_scopes, scope_granted
from apiauth.store import StoreUnavailable
from apiauth.throttling import TokenBucketThrottle


class OAuthError(exceptions.APIException):
    """An RFC 6749 §5.2 error, rendered as problem+json with ``error`` members."""

    challenge: str | None = None
    """``WWW-Authenticate`` for a 401 (the exception handler sends it)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(detail=description, code=error)
        self.status_code = status
        self.problem_extra = {"error": error, "error_description": description}


def invalid_client(request: Request, detail: str, challenge: str | None = None) -> OAuthError:
    """401 ``invalid_client`` with the API-key challenge (RFC 6749 §5.2)."""
    exc = OAuthError("invalid_client", detail, 401)
    exc.challenge = challenge or APIKeyAuthentication().authenticate_header(request)
    return exc


CLIENT_KINDS = frozenset({"api_key", "oauth_app"})


class ClientAuthenticated(HasScopes):
    """The request must carry an API key or an application's credentials (``invalid_client``
    otherwise). Throttled first, as :class:`HasScopes` does, so refused requests are limited
    too."""

    def has_permission(self, request: Request, view: Any) -> bool:
        self.run_throttles(request, view)
        if not isinstance(request.auth, Credential) or request.auth.kind not in CLIENT_KINDS:
            raise invalid_client(request, _("Authenticate with your API key."))
        return True


class OAuthFormParser(FormParser):
    max_body_size = 64 * 1024  # a token request is a few hundred bytes


class OAuthView(APIView):
    authentication_classes = [APIKeyAuthentication, OAuthClientAuthentication]
    permission_classes = [ClientAuthenticated]
    throttle_classes = [TokenBucketThrottle]
    parser_classes = [OAuthFormParser]
    throttle_scope = "oauth"

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Any:
        # Never inside ATOMIC_REQUESTS: a refusal (a reused refresh token is an invalid_grant)
        # would roll back the revocation it made, and the revoked family would live again.
        return transaction.non_atomic_requests(super().as_view(**initkwargs))

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            # A failed client authentication is an invalid_client (and a failed attempt, which
            # APIKeyAuthentication has already counted).
            detail = str(getattr(exc, "detail", ""))
            exc = invalid_client(self.request, detail, getattr(exc, "challenge", None))
        elif isinstance(exc, exceptions.ParseError):
            exc = OAuthError("invalid_request", str(exc.detail))
        return super().handle_exception(exc)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        # RFC 6749 §5.1: token responses are never cached.
        response["Cache-Control"] = "no-store"
        response["Pragma"] = "no-cache"
        return response

    def param(self, request: Request, name: str, *, required: bool = False) -> str | None:
        """One form parameter; sent twice is ``invalid_request`` (RFC 6749 §3.1)."""
        values = request.data.getlist(name) if hasattr(request.data, "getlist") else []
        if len(values) > 1:
            raise OAuthError("invalid_request", _("A parameter was sent more than once."))
        if not values or values[0] == "":
            if required:
                raise OAuthError("invalid_request", _("A required parameter is missing."))
            return None
        return str(values[0])

    def client(self, request: Request) -> APIKey | Application:
        """The authenticated client: an API key, or an application."""
        credential = request.auth
        assert isinstance(credential, Credential)
        if credential.kind == "oauth_app":
            app: Application = request._request.apiauth_client  # type: ignore[attr-defined]
            return app
        return APIKey.objects.select_related("owner").get(public_id=credential.id)

    client_key = client


class TokenView(OAuthView):
    """``POST /token``: exchange an API key for an access token, or refresh one."""

    grants = {
        "client_credentials": "client_credentials",
        "authorization_code": "authorization_code",
        "refresh_token": "refresh_token",
    }

    def post(self, request: Request) -> Response:
        grant_type = self.param(request, "grant_type", required=True)
        handler = self.grants.get(grant_type or "")
        if handler is None:
            raise OAuthError("unsupported_grant_type", _("This grant type is not supported."))
        try:
            issued: tokens.Issued = getattr(self, handler)(request)
        except tokens.GrantError as exc:
            raise OAuthError(exc.error, exc.description) from None
        except NoSigningKey:
            raise OAuthError(
                "temporarily_unavailable", _("No signing key is active; try again later."), 503
            ) from None
        return Response(issued.as_response())

    def client_credentials(self, request: Request) -> tokens.Issued:
        client = self.client(request)
        if isinstance(client, Application) and not (
            client.confidential and client.allows("client_credentials")
        ):
            raise tokens.GrantError("unauthorized_client", "This client may not use this grant.")
        return tokens.client_credentials(client, self.param(request, "scope"))

    def authorization_code(self, request: Request) -> tokens.Issued:
        client = self.client(request)
        if not isinstance(client, Application):
            raise tokens.GrantError("unauthorized_client", "An API key has no authorizations.")
        code = self.param(request, "code", required=True)
        assert code is not None
        return authorization.exchange_code(
            client,
            code,
            self.param(request, "redirect_uri"),
            self.param(request, "code_verifier"),
        )

    def refresh_token(self, request: Request) -> tokens.Issued:
        client = self.client(request)
        allowed = (
            client.allows("refresh_token")
            if isinstance(client, Application)
            else conf.jwt.refresh_tokens
        )
        if not allowed:
            raise OAuthError("unsupported_grant_type", _("Refresh tokens are not issued here."))
        raw = self.param(request, "refresh_token", required=True)
        assert raw is not None
        return tokens.refresh(client, raw, self.param(request, "scope"))


class RevokeView(OAuthView):
    """``POST /revoke`` (RFC 7009): a refresh token ends its family; an access token is denied
    by ``jti`` until it expires. Unknown tokens, and other clients' tokens, answer 200 too."""

    def post(self, request: Request) -> Response:
        token = self.param(request, "token", required=True)
        assert token is not None
        key = self.client(request)
        family = self.refresh_family(token, key)
        if family is not None:
            try:
                # The refresh tokens end in the database even when the mark that ends the
                # access tokens cannot be written: the client is told to try again.
                tokens.revoke_family(family, reason="revoked by its client")
            finally:
                audit.record("revoke", family, client_ip=get_client_ip(request), reason="RFC 7009")
            return Response(status=200)
        try:
            verified = token_verifier().verify(token)
        except (jose.TokenError, KeysUnavailable):
            return Response(status=200)
        claims = verified.claims
        if verified.issuer.local and "jti" in claims and self.same_client(claims, key):
            revocation.revoke_jti(key.lineage_id, claims["jti"], float(claims["exp"]))
        return Response(status=200)

    def same_client(self, claims: dict[str, Any], key: APIKey | Application) -> bool:
        """Whether the token was issued to ``key``'s lineage: a rolled key's successor revokes
        its predecessor's tokens during the grace period (and the reverse)."""
        client_id = claims.get("client_id")
        if client_id == key.public_id:
            return True
        if isinstance(key, Application):
            return False
        issued_to = APIKey.objects.filter(public_id=client_id).values_list("lineage", flat=True)
        return key.lineage in issued_to

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, StoreUnavailable):
            exc = OAuthError(
                "temporarily_unavailable", _("Revocation is unavailable; try again."), 503
            )
        return super().handle_exception(exc)

    def refresh_family(self, token: str, key: APIKey | Application) -> Any:
        found = tokens.find_refresh_token(token)
        if found is None or found.family.lineage != key.lineage_id:
            return None
        return found.family


class IntrospectView(OAuthView):
    """``POST /introspect`` (RFC 7662) for resource servers holding the introspection scope.
    An inactive token answers ``{"active": false}`` and nothing else."""

    def post(self, request: Request) -> Response:
        credential = request.auth
        assert isinstance(credential, Credential)
        scope = conf.jwt.introspection_scope
        if not scope_granted(scope, credential.scopes):
            raise OAuthError(
                "insufficient_scope",
                _("Introspection needs the %(scope)s scope.") % {"scope": scope},
                403,
            )
        token = self.param(request, "token", required=True)
        assert token is not None
        return Response(self.introspect(token))

    def introspect(self, token: str) -> dict[str, Any]:
        found = tokens.find_refresh_token(token)
        if found is not None:
            return self.introspect_refresh_token(found)
        try:
            verified = token_verifier().verify(token)
        except (jose.TokenError, KeysUnavailable):
            return {"active": False}
        return self.introspect_access_token(verified)

    def introspect_refresh_token(self, found: RefreshToken) -> dict[str, Any]:
        family = found.family
        key = family.client
        if (
            found.used_at is not None
            or found.expires_at <= timezone.now()
            or not family.is_live
            or not key_usable(key)
        ):
            return {"active": False}
        return {
            "active": True,
            "token_type": "refresh_token",
            "client_id": key.public_id,
            "scope": " ".join(sorted(granted_scopes(family.scopes, key.scopes))),
            "exp": int(found.expires_at.timestamp()),
            "iat": int(found.created_at.timestamp()),
        }

    def introspect_access_token(self, verified: verification.Verified) -> dict[str, Any]:
        """One of our tokens (we do not speak for other issuers), its API key still usable,
        and no revocation mark covering it. Its scopes are those the key still grants, as
        :class:`~apiauth.authentication.JWTAuthentication` sees them."""
        claims = verified.claims
        if not verified.issuer.local:
            return {"active": False}
        client_id = claims.get("client_id")
        key: APIKey | Application | None
        if isinstance(client_id, str) and client_id.startswith(CLIENT_ID_PREFIX):
            key = Application.objects.get_by_client_id(client_id)
        else:
            key = APIKey.objects.select_related("owner").filter(public_id=client_id).first()
        if key is None or not key_usable(key):
            return {"active": False}
        person = isinstance(key, Application)
        if person and not person_active(claims.get("sub")):
            return {"active": False}
        lineage, marks = key.lineage_id, revocation.marks_for(claims, person=person)
        try:
            revoked = revocation.is_revoked(lineage, marks, verification.issued_at(claims))
        except StoreUnavailable:
            revoked = revocation.revoked_in_database(lineage, marks, verification.issued_at(claims))
        if revoked:
            return {"active": False}
        body = {"active": True, "token_type": "Bearer"}
        for name in ("client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti"):
            if name in claims:
                body[name] = claims[name]
        body["scope"] = " ".join(sorted(granted_scopes(jose.scopes(claims), key.scopes)))
        return body


def token_verifier() -> verification.TokenVerifier:
    """The verifier of the project's :class:`JWTAuthentication` (the first subclass in DRF's
    default classes), else the shared one: the endpoints judge tokens as the API does, and
    share its memo of verified tokens."""
    for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if isinstance(cls, type) and issubclass(cls, JWTAuthentication):
            return cls.verifier
    return verification.verifier


def key_usable(key: APIKey | Application) -> bool:
    return key.status == "active" and (key.owner is None or key.owner.is_active)


def person_active(sub: Any) -> bool:
    """Whether a person's token names an active user."""
    from django.contrib.auth import get_user_model

    user = get_user_model()._default_manager.filter(pk=sub).first() if sub else None
    return user is not None and user.is_active


class JWKSView(View):
    """``GET .well-known/jwks.json``: the public halves of our next, active and retired keys."""

    def get(self, request: HttpRequest) -> JsonResponse:
        response = JsonResponse(ring.current().jwks())
        patch_cache_control(response, public=True, max_age=conf.jwt.jwks_max_age)
        return response
