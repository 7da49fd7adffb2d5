"""OAuth 2.0 for people: the applications they authorize, their consents, and the short-lived
authorization codes of the authorization code grant (RFC 6749 §4.1, with PKCE, RFC 7636)."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth.compiled import CompiledLookup
from apiauth.models.base import AbstractCredential, CredentialManager, RevokedCredential

CLIENT_ID_PREFIX = "app_"
CLIENT_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
CLIENT_SECRET_PREFIX = "cs_"
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
MAX_REDIRECT_URIS = 20


CLIENT_ID_LENGTH = 20
CLIENT_ID_RE = re.compile(rf"{CLIENT_ID_PREFIX}[{CLIENT_ID_ALPHABET}]{{{CLIENT_ID_LENGTH}}}")
"""What :func:`generate_client_id` makes: anything else names no application."""


def generate_client_id() -> str:
    return CLIENT_ID_PREFIX + "".join(
        secrets.choice(CLIENT_ID_ALPHABET) for _ in range(CLIENT_ID_LENGTH)
    )


def generate_client_secret() -> str:
    return CLIENT_SECRET_PREFIX + secrets.token_urlsafe(32)


def secret_digest(secret: str) -> str:
    # A 256-bit random secret needs no slow hash: the digest is compared in constant time.
    return hashlib.sha256(secret.encode()).hexdigest()


def is_loopback(uri: str) -> bool:
    """An ``http`` redirect to a loopback IP literal (RFC 8252 §7.3): any port matches."""
    try:
        # urlsplit too refuses some hosts (an unclosed "[", "[zz]"): no URI, no loopback.
        parts = urlsplit(uri)
        return parts.scheme == "http" and ipaddress.ip_address(parts.hostname or "").is_loopback
    except ValueError:
        return False


def validate_redirect_uris(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(uri, str) for uri in value):
        raise ValidationError(_("Redirect URIs must be a list of strings."), code="invalid_uris")
    if len(value) > MAX_REDIRECT_URIS:
        raise ValidationError(_("At most 20 redirect URIs."), code="invalid_uris")
    for uri in value:
        try:
            parts = urlsplit(uri)
        except ValueError:  # a bracketed host that is no IPv6 address
            parts = None
        problem = None
        if parts is None or len(uri) > 500 or not uri.isprintable() or " " in uri:
            problem = _("it is not a URI")
        elif parts.fragment or "#" in uri:
            problem = _("a redirect URI has no fragment (RFC 6749 §3.1.2)")
        elif not parts.scheme or parts.scheme.lower() in {"javascript", "data", "file", "vbscript"}:
            problem = _("give an https URI, a loopback http URI or an app's own scheme")
        elif parts.scheme == "http" and not is_loopback(uri):
            problem = _("plain http is only for loopback addresses (127.0.0.1, [::1])")
        elif parts.scheme in {"http", "https"} and not parts.hostname:
            problem = _("it names no host")
        if problem is not None:
            raise ValidationError(
                _("“%(uri)s”: %(problem)s.") % {"uri": uri[:100], "problem": problem},
                code="invalid_uri",
            )


def validate_grant_types(value: Any) -> None:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(grant, str) and grant in GRANT_TYPES for grant in value)
    ):
        raise ValidationError(
            _("Grant types must be a non-empty list of: %(grants)s.")
            % {"grants": ", ".join(GRANT_TYPES)},
            code="invalid_grants",
        )


def default_grant_types() -> list[str]:
    return ["authorization_code", "refresh_token"]


class ApplicationManager(CredentialManager["Application"]):
    def create_application(self, **fields: Any) -> tuple[Application, str]:
        """Create an application; returns it with its client secret (``""`` for a public
        client), shown once: only its digest is stored."""
        return self.create_with_secret(**fields)

    def get_by_client_id(self, client_id: str) -> Application | None:
        """The application, its owner joined, in one query compiled once per thread.

        ``None`` without a query for what no client id can be: whatever a client sends ends
        here, and PostgreSQL refuses a parameter with a NUL byte outright (an error, not a
        miss)."""
        if not CLIENT_ID_RE.fullmatch(client_id):
            return None
        return _client_id_lookup.get(client_id, using=router.db_for_read(self.model))

    def rotate_secret(self, app: Application, grace: Any, *, by: Any = None) -> str:
        """A new client secret; the current one keeps working for ``grace``."""
        if app.is_revoked:
            raise RevokedCredential("A revoked application cannot be rotated.")
        if not app.confidential:
            raise ValueError("A public client has no secret.")
        secret = generate_client_secret()
        app.previous_secret_hash = app.secret_hash
        app.previous_secret_expires_at = timezone.now() + grace
        app.secret_hash = secret_digest(secret)
        app.save(
            update_fields=["secret_hash", "previous_secret_hash", "previous_secret_expires_at"]
        )
        return secret


class Application(AbstractCredential):
    """An app that people sign in to and authorize to call the API for them: a single-page
    app, a mobile app or a CLI (public clients, which hold no secret and prove themselves with
    PKCE), or a server-side web app (a confidential client with a secret)."""

    kind = "oauth_app"

    class ClientType(models.TextChoices):
        CONFIDENTIAL = "confidential", _("confidential (a server that keeps a secret)")
        PUBLIC = "public", _("public (a browser, mobile or command-line app)")

    client_id = models.CharField(_("client id"), max_length=32, unique=True, editable=False)
    client_type = models.CharField(
        _("client type"),
        max_length=20,
        choices=ClientType.choices,
        default=ClientType.CONFIDENTIAL,
    )
    secret_hash = models.CharField(_("secret digest"), max_length=64, blank=True, editable=False)
    previous_secret_hash = models.CharField(
        _("previous secret digest"), max_length=64, blank=True, editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )
    redirect_uris = models.JSONField(
        _("redirect URIs"),
        default=list,
        blank=True,
        validators=[validate_redirect_uris],
        help_text=_(
            "Matched exactly. For native apps and CLIs, http://127.0.0.1/callback matches any "
            "port (RFC 8252)."
        ),
    )
    grant_types = models.JSONField(
        _("grant types"), default=default_grant_types, validators=[validate_grant_types]
    )
    first_party = models.BooleanField(
        _("first party"),
        default=False,
        help_text=_("Your own app: people are not asked for consent."),
    )

    objects = ApplicationManager()

    class Meta:
        verbose_name = _("OAuth application")
        verbose_name_plural = _("OAuth applications")
        ordering = ["-created_at"]

    @property
    def public_id(self) -> str:  # type: ignore[override]
        return self.client_id

    @property
    def confidential(self) -> bool:
        return self.client_type == self.ClientType.CONFIDENTIAL

    def assign_new_secret(self) -> str:
        if self.pk is not None:
            raise ValueError("Only a new application gets a secret; rotate an existing one.")
        self.client_id = generate_client_id()
        if not self.confidential:
            return ""
        secret = generate_client_secret()
        self.secret_hash = secret_digest(secret)
        return secret

    def check_secret(self, presented: str) -> bool:
        """Whether ``presented`` is the client secret (or the previous one, within its grace),
        compared in constant time."""
        if not self.confidential or not self.secret_hash or len(presented) > 200:
            return False
        digest = secret_digest(presented)
        current = hmac.compare_digest(digest, self.secret_hash)
        expires = self.previous_secret_expires_at
        previous = (
            bool(self.previous_secret_hash)
            and expires is not None
            and expires > timezone.now()
            and hmac.compare_digest(digest, self.previous_secret_hash)
        )
        return current or previous

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Exact match (RFC 9700 §2.1), except a loopback redirect's port (RFC 8252 §7.3)."""
        if uri in self.redirect_uris:
            return True
        if not uri.startswith("http://") or "#" in uri or not is_loopback(uri):
            return False
        presented = urlsplit(uri)
        if presented.username is not None or presented.password is not None:
            return False
        for registered in self.redirect_uris:
            if not is_loopback(registered):
                continue
            expected = urlsplit(registered)
            if (presented.hostname, presented.path, presented.query) == (
                expected.hostname,
                expected.path,
                expected.query,
            ):
                return True
        return False

    def allows(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


_client_id_lookup: CompiledLookup[Application] = CompiledLookup(
    lambda client_id: Application._default_manager.select_related("owner").filter(
        client_id=client_id
    )
)


class Consent(models.Model):
    """What a person allowed an application: remembered until they (or an operator) revoke
    it, when the application's refresh families and access tokens for them end too."""

    kind = "authorization"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    application = models.ForeignKey(
        Application, verbose_name=_("application"), on_delete=models.CASCADE, related_name="+"
    )
    scopes = models.JSONField(_("scopes"), default=list)
    created_at = models.DateTimeField(_("granted at"), default=timezone.now)
    updated_at = models.DateTimeField(_("last confirmed"), default=timezone.now)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("authorization")
        verbose_name_plural = _("authorizations")
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["user", "application"], name="apiauth_one_consent")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.application}"

    @property
    def public_id(self) -> str:
        return f"{self.application.client_id}/{self.user_id}"


class AuthorizationCode(models.Model):
    """One authorization code: stored as its SHA-256, spent once, bound to the application,
    the redirect URI, the user and the PKCE challenge."""

    code_hash = models.CharField(max_length=64, unique=True)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    redirect_uri = models.CharField(max_length=500)
    scopes = models.JSONField(default=list)
    code_challenge = models.CharField(max_length=128)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    family = models.ForeignKey(
        "apiauth.TokenFamily", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("authorization code")
        verbose_name_plural = _("authorization codes")

    def __str__(self) -> str:
        return f"{self.application_id} / {self.pk}"
