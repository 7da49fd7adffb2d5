"""People's tokens: consent, authorization codes with PKCE (RFC 7636), their exchange, and
ending what a person authorized (one application, or everywhere).

A person's access token names the user in ``sub`` and the application in ``client_id``. Its
revocation marks live with the application's lineage (one Redis Cluster slot with the
application's rate limits): the family mark of its ``sid``, its ``jti``, and the person's own
mark ``u:<user pk>``, which *sign out everywhere* and revoking one application write.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import hmac
import logging
import re
import secrets
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from apiauth import audit, revocation
from apiauth.conf import conf
from apiauth.models import Application, AuthorizationCode, Consent, TokenFamily
from apiauth.scopes import granted_scopes, missing_scopes
from apiauth.store import StoreUnavailable
from apiauth.tokens import GrantError, Issued, access_token, new_refresh_token, revoke_family

logger = logging.getLogger("apiauth.authorization")

VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
CHALLENGE_RE = re.compile(r"[A-Za-z0-9\-_]{43}")
"""An S256 challenge: the base64url SHA-256 of a verifier, 43 characters, no padding."""


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 §4.6 with S256, compared in constant time."""
    if not VERIFIER_RE.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier), challenge)


def consented(app: Application, user: Any, scopes: list[str]) -> bool:
    """Whether ``user`` needs not be asked: a first-party application, or a standing consent
    that covers ``scopes``."""
    if app.first_party:
        return True
    consent = Consent.objects.filter(user=user, application=app, revoked_at__isnull=True).first()
    return consent is not None and not missing_scopes(scopes, consent.scopes)


def record_consent(app: Application, user: Any, scopes: list[str]) -> Consent:
    """Remember what ``user`` allowed (widening a standing consent, or granting anew)."""
    now = timezone.now()
    consent, created = Consent.objects.get_or_create(
        user=user, application=app, defaults={"scopes": sorted(scopes), "created_at": now}
    )
    if not created:
        if consent.revoked_at is not None:  # granted anew: nothing of the old one stands
            consent.scopes, consent.created_at = sorted(scopes), now
        else:
            consent.scopes = sorted(set(consent.scopes) | set(scopes))
        consent.revoked_at, consent.updated_at = None, now
        consent.save(update_fields=["scopes", "revoked_at", "updated_at", "created_at"])
    return consent


def issue_code(
    app: Application, user: Any, redirect_uri: str, scopes: list[str], challenge: str
) -> str:
    """A new authorization code, stored as its SHA-256; the raw code goes to the client once."""
    raw = secrets.token_urlsafe(32)
    now = timezone.now()
    AuthorizationCode.objects.create(
        code_hash=_digest(raw),
        application=app,
        user=user,
        redirect_uri=redirect_uri,
        scopes=scopes,
        code_challenge=challenge,
        created_at=now,
        expires_at=now + datetime.timedelta(seconds=conf.jwt.authorization_code_lifetime),
    )
    return raw


def exchange_code(
    app: Application, raw: str, redirect_uri: str | None, verifier: str | None
) -> Issued:
    """``grant_type=authorization_code``: spend the code once and issue the person's tokens.

    A code presented again revokes what it issued (RFC 6749 §4.1.2): whoever presents it the
    second time may have stolen it.
    """
    if not app.allows("authorization_code"):
        raise GrantError("unauthorized_client", "This client may not use this grant.")
    if not raw or len(raw) > 200 or not raw.isascii():
        raise GrantError("invalid_grant", "The authorization code is invalid.")
    now = timezone.now()
    reused: AuthorizationCode | None = None
    with transaction.atomic(using=router.db_for_write(AuthorizationCode)):
        code = (
            AuthorizationCode.objects.select_related("user", "family")
            .filter(code_hash=_digest(raw))
            .first()
        )
        if code is None or code.application_id != app.pk:
            raise GrantError("invalid_grant", "The authorization code is invalid.")
        spent = AuthorizationCode.objects.filter(pk=code.pk, used_at__isnull=True).update(
            used_at=now
        )
        if not spent:
            reused = code
        elif code.expires_at <= now:
            raise GrantError("invalid_grant", "The authorization code has expired.")
        elif redirect_uri != code.redirect_uri:
            raise GrantError("invalid_grant", "The redirect_uri differs from the authorization's.")
        elif verifier is None or not pkce_matches(verifier, code.code_challenge):
            raise GrantError("invalid_grant", "The code_verifier does not match the challenge.")
        elif not code.user.is_active:
            raise GrantError("invalid_grant", "The user is inactive.")
        else:
            scopes = sorted(granted_scopes(code.scopes, app.scopes))
            family, refresh = start_family(app, code.user, scopes, now)
            AuthorizationCode.objects.filter(pk=code.pk).update(family=family)
            token, expires_in = access_token(app, scopes, sid=str(family.id), user=code.user)
    if reused is not None:
        if reused.family is not None:
            reason = "an authorization code was presented again"
            audit.record("reuse", reused.family, reason=reason)
            with contextlib.suppress(StoreUnavailable):  # the row stands; published later
                revoke_family(reused.family, reason="authorization code reused")
        raise GrantError("invalid_grant", "The authorization code was already used.")
    return Issued(token, expires_in, " ".join(scopes), refresh)


def start_family(
    app: Application, user: Any, scopes: list[str], now: datetime.datetime
) -> tuple[TokenFamily, str | None]:
    """The refresh family of one authorization: every person's access token carries one, so
    revoking the authorization ends them; a refresh token only where the app may refresh."""
    lifetime = datetime.timedelta(seconds=conf.jwt.refresh_family_lifetime)
    ends = now + lifetime if app.expires_at is None else min(now + lifetime, app.expires_at)
    family = TokenFamily.objects.create(
        application=app, user=user, scopes=scopes, created_at=now, expires_at=ends
    )
    refresh = new_refresh_token(family, now) if app.allows("refresh_token") else None
    return family, refresh


def end_authorization(app: Application, user: Any, *, reason: str) -> int:
    """End what ``user`` authorized ``app`` to do: the consent, every refresh family, and
    every access token (the person's mark in the app's lineage). Returns the families ended."""
    now = timezone.now()
    Consent.objects.filter(user=user, application=app, revoked_at__isnull=True).update(
        revoked_at=now
    )
    ended = _end_families(TokenFamily.objects.filter(application=app, user=user), reason, now)
    _mark_person(app.lineage_id, user.pk)
    return ended


def sign_out_everywhere(user: Any, *, reason: str = "signed out everywhere") -> int:
    """End every token ``user`` holds: through every application they authorized, and the
    tokens of their identity provider and API keys (:func:`revocation.revoke_user`). Their
    consents stay: signing in again asks nothing new."""
    now = timezone.now()
    families = TokenFamily.objects.filter(user=user)
    apps = set(families.values_list("application__lineage", flat=True))
    apps |= set(Consent.objects.filter(user=user).values_list("application__lineage", flat=True))
    ended = _end_families(families, reason, now)
    for lineage in sorted(str(lineage) for lineage in apps if lineage is not None):
        _mark_person(lineage, user.pk)
    with contextlib.suppress(StoreUnavailable):  # rows written; published when it is back
        revocation.revoke_user(user)
    return ended


def _end_families(families: Any, reason: str, now: datetime.datetime) -> int:
    """Revoked rows end the refresh tokens; the marks of their ``sid`` are not needed, the
    person's mark covers their access tokens."""
    return int(
        families.filter(revoked_at__isnull=True).update(revoked_at=now, revoked_reason=reason[:500])
    )


def _mark_person(lineage: str, user_pk: Any) -> None:
    """The person's mark: its row is the revocation; the store has it now, or once it is back
    (``publish_pending``), and meanwhile the database answers (``REVOCATION_FAILURE_MODE``)."""
    try:
        revocation.revoke_issued_before_named(lineage, revocation.person_mark(user_pk))
    except StoreUnavailable as exc:
        logger.error(
            "person %s signed out of %s; its mark waits for the store: %s", user_pk, lineage, exc
        )


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()
