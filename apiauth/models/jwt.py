"""Our side of JWTs: the signing keys, and the refresh-token families of the grants we issue."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth import encryption, jose, signals
from apiauth.conf import conf
from apiauth.models.apikeys import APIKey
from apiauth.models.oauth import Application


class SigningKeyManager(models.Manager["SigningKey"]):
    def generate(
        self,
        algorithm: str | None = None,
        key_size: int | None = None,
        *,
        state: str = "next",
    ) -> SigningKey:
        """A new key pair, its private half encrypted (:mod:`apiauth.encryption`)."""
        settings = conf.jwt
        algorithm = algorithm or settings.signing_algorithm
        if algorithm == "RS256":
            key_size = key_size or settings.rsa_key_size
        elif key_size is not None:
            raise ValueError(f"{algorithm} keys have no size to choose.")
        private, public = jose.generate_pair(algorithm, key_size)
        kid = jose.thumbprint(algorithm, public)
        key = self.model(
            kid=kid,
            algorithm=algorithm,
            key_size=key_size,
            public_key=public.decode(),
            state=state,
            activated_at=timezone.now() if state == SigningKey.State.ACTIVE else None,
        )
        key.private_key = key.encrypt_private_key(private)
        key.full_clean(exclude=["private_key", "public_key"])
        key.save(force_insert=True)
        return key

    def promote(self, key: SigningKey) -> SigningKey | None:
        """Make ``key`` the signing key; the one it replaces is retired (and returned)."""
        if key.state not in (SigningKey.State.NEXT, SigningKey.State.RETIRED):
            raise ValueError(
                f"Only a next or retired key can be promoted; this one is {key.state}."
            )
        now = timezone.now()
        with transaction.atomic(using=router.db_for_write(self.model)):
            current = self.select_for_update().filter(state=SigningKey.State.ACTIVE).first()
            if current is not None:
                current.state, current.retired_at = SigningKey.State.RETIRED, now
                current.save(update_fields=["state", "retired_at"])
            key.state, key.activated_at, key.retired_at = SigningKey.State.ACTIVE, now, None
            key.save(update_fields=["state", "activated_at", "retired_at"])
        return current

    def retire(self, key: SigningKey) -> None:
        """Stop publishing a next key, or stop signing with nothing: a retired key verifies
        the tokens it signed until they expire. The active key is retired by promoting."""
        if key.state == SigningKey.State.ACTIVE:
            raise ValueError("The active key is retired by promoting another one.")
        if key.state != SigningKey.State.NEXT:
            raise ValueError(f"Only a next key can be retired; this one is {key.state}.")
        key.state, key.retired_at = SigningKey.State.RETIRED, timezone.now()
        key.save(update_fields=["state", "retired_at"])

    def revoke(self, key: SigningKey, reason: str = "") -> bool:
        """Never verify with ``key`` again (a leaked private key). Returns ``False`` when it
        was revoked already. Revoking the active key stops issuing until one is promoted."""
        updated = (
            self.filter(pk=key.pk)
            .exclude(state=SigningKey.State.REVOKED)
            .update(state=SigningKey.State.REVOKED, revoked_at=timezone.now(), reason=reason[:500])
        )
        key.refresh_from_db()
        if updated:
            signals.signing_keys_changed.send(sender=SigningKey)
        return bool(updated)

    def rotate(self, algorithm: str | None = None, key_size: int | None = None) -> Rotation:
        """One rotation step, safe to run from cron: promote the next key (generating one
        first if there is none), retire the active one, publish a new next key, and revoke
        retired keys whose every token has expired."""
        settings = conf.jwt
        horizon = timezone.now() - datetime.timedelta(
            seconds=settings.max_token_lifetime + settings.leeway
        )
        with transaction.atomic(using=router.db_for_write(self.model)):
            upcoming = self.filter(state=SigningKey.State.NEXT).first()
            if upcoming is None:
                upcoming = self.generate(algorithm, key_size)
            retired = self.promote(upcoming)
            published = self.generate(algorithm, key_size)
            expired = list(self.filter(state=SigningKey.State.RETIRED, retired_at__lt=horizon))
            for key in expired:
                self.revoke(key, "every token it signed has expired")
        return Rotation(active=upcoming, retired=retired, next=published, expired=expired)


@dataclasses.dataclass(frozen=True)
class Rotation:
    active: SigningKey
    retired: SigningKey | None
    next: SigningKey
    expired: list[SigningKey]


class SigningKey(models.Model):
    """A key pair that signs the access tokens we issue; the private half encrypted at rest.

    States: *next* (published in the JWKS so relying parties cache it before it signs),
    *active* (signs; exactly one, a database constraint), *retired* (verifies the tokens it
    signed until they expire), *revoked* (never verifies again).
    """

    kind = "signing_key"

    class State(models.TextChoices):
        NEXT = "next", _("next")
        ACTIVE = "active", _("active")
        RETIRED = "retired", _("retired")
        REVOKED = "revoked", _("revoked")

    kid = models.CharField(_("key id"), max_length=64, unique=True, editable=False)
    algorithm = models.CharField(
        _("algorithm"),
        max_length=10,
        choices=[("ES256", "ES256"), ("EdDSA", "EdDSA (Ed25519)"), ("RS256", "RS256")],
    )
    key_size = models.PositiveIntegerField(
        _("RSA key size"), null=True, blank=True, choices=[(2048, "2048"), (3072, "3072")]
    )
    public_key = models.TextField(_("public key (PEM)"), editable=False)
    private_key = models.TextField(_("private key (encrypted)"), editable=False)
    state = models.CharField(
        _("state"), max_length=10, choices=State.choices, default=State.NEXT, editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True, editable=False)
    retired_at = models.DateTimeField(_("retired at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    reason = models.CharField(_("reason"), max_length=500, blank=True, editable=False)

    objects = SigningKeyManager()

    class Meta:
        verbose_name = _("signing key")
        verbose_name_plural = _("signing keys")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"],
                condition=models.Q(state="active"),
                name="apiauth_one_active_signing_key",
            ),
            models.UniqueConstraint(
                fields=["state"],
                condition=models.Q(state="next"),
                name="apiauth_one_next_signing_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} {self.kid[:12]} ({self.state})"

    @property
    def public_id(self) -> str:
        return self.kid

    def clean(self) -> None:
        super().clean()
        if self.algorithm == "RS256" and self.key_size not in (2048, 3072):
            raise ValidationError({"key_size": _("RS256 keys are 2048 or 3072 bits.")})
        if self.algorithm != "RS256" and self.key_size is not None:
            raise ValidationError({"key_size": _("Only RS256 keys have a size to choose.")})

    def encrypt_private_key(self, pem: bytes) -> str:
        return encryption.encrypt(pem, f"signing-key:{self.kid}")

    def decrypt_private_key(self) -> bytes:
        return encryption.decrypt(self.private_key, f"signing-key:{self.kid}")


REFRESH_TOKEN_MARKER = "rt_"


class TokenFamilyQuerySet(models.QuerySet["TokenFamily"]):
    def live(self) -> TokenFamilyQuerySet:
        """Families that can still be refreshed: not revoked, not past their lifetime, and
        their API key or application usable."""
        now = timezone.now()
        families = self.filter(revoked_at__isnull=True, expires_at__gt=now)
        for client in ("api_key", "application"):
            usable = models.Q(**{f"{client}__revoked_at__isnull": True}) & (
                models.Q(**{f"{client}__expires_at__isnull": True})
                | models.Q(**{f"{client}__expires_at__gt": now})
            )
            families = families.filter(models.Q(**{f"{client}__isnull": True}) | usable)
        return families


class TokenFamily(models.Model):
    """The refresh tokens descending from one grant (RFC 9700 §4.14): an API key's client
    credentials, or a person's authorization of an application (``application`` and ``user``).

    Each refresh spends one token and issues the next; presenting a spent token revokes the
    family and its access tokens (they carry the family's id as ``sid``).
    """

    kind = "token_family"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    api_key = models.ForeignKey(
        APIKey,
        verbose_name=_("API key"),
        on_delete=models.CASCADE,
        related_name="token_families",
        null=True,
        blank=True,
        editable=False,
    )
    application = models.ForeignKey(
        Application,
        verbose_name=_("application"),
        on_delete=models.CASCADE,
        related_name="token_families",
        null=True,
        blank=True,
        editable=False,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
    )
    scopes = models.JSONField(_("scopes"), default=list, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    expires_at = models.DateTimeField(_("ends at"), editable=False)
    refreshed_at = models.DateTimeField(_("last refreshed"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_reason = models.CharField(
        _("revocation reason"), max_length=500, blank=True, editable=False
    )

    objects = TokenFamilyQuerySet.as_manager()

    class Meta:
        verbose_name = _("token family")
        verbose_name_plural = _("token families")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.client.public_id} / {str(self.id)[:8]}"

    @property
    def client(self) -> Any:
        """The API key, or the application, the family's tokens were issued to."""
        return self.api_key if self.api_key_id is not None else self.application

    @property
    def lineage(self) -> str:
        """Where the family's revocation marks live: its client's lineage."""
        return str(self.client.lineage_id)

    @property
    def public_id(self) -> str:
        return str(self.id)

    @property
    def is_live(self) -> bool:
        now = timezone.now()
        client = self.client
        user = self.user if self.user_id is not None else None
        return (
            self.revoked_at is None
            and self.expires_at > now
            and not client.is_revoked
            and not client.is_expired
            and (user is None or user.is_active)
        )


class RefreshToken(models.Model):
    """One refresh token of a family: only its SHA-256 is stored, and it is spent once."""

    family = models.ForeignKey(TokenFamily, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("refresh token")
        verbose_name_plural = _("refresh tokens")

    def __str__(self) -> str:
        return f"{self.family_id} / {self.pk}"
