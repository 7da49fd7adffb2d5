"""API keys: a public id and the SHA-256 of the whole key, nothing recoverable."""

from __future__ import annotations

import datetime
from typing import Any

from django.db import IntegrityError, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth import crypto
from apiauth.compiled import CompiledLookup
from apiauth.conf import conf
from apiauth.models.base import (
    AbstractCredential,
    AlreadyRolled,
    CredentialManager,
    RevokedCredential,
)


class APIKeyManager(CredentialManager["APIKey"]):
    def create_key(self, **fields: Any) -> tuple[APIKey, str]:
        """Create a key; returns it with its raw value (see :meth:`create_with_secret`)."""
        return self.create_with_secret(**fields)

    def get_by_digest(self, digest: str) -> APIKey | None:
        """The key with this digest, its owner joined, in one query compiled once per thread."""
        return _digest_lookup.get(digest, using=router.db_for_read(self.model))

    def get_by_public_id(self, public_id: str) -> APIKey | None:
        """The key with this public id, its owner joined (tokens name their key by it)."""
        return _public_id_lookup.get(public_id, using=router.db_for_read(self.model))

    def get_from_key(self, raw: str) -> APIKey:
        """The key whose raw value is ``raw``, usable or not.

        Raises :class:`~apiauth.crypto.MalformedKey` without a query for a malformed value and
        ``DoesNotExist`` for an unknown one.
        """
        key = self.get_by_digest(crypto.parse_key(raw, conf.KEY_PREFIX).digest)
        if key is None:
            raise self.model.DoesNotExist("No API key matches.")
        return key

    def roll(self, key: APIKey, grace: datetime.timedelta, *, by: Any = None) -> tuple[APIKey, str]:
        """Issue a successor with the same reach; the old key stops working after ``grace``.

        A key is rolled once: raises :class:`AlreadyRolled` (with the successor) when it has
        one, and :class:`RevokedCredential` when it is revoked.
        """
        if key.is_revoked:
            raise RevokedCredential("A revoked key cannot be rolled.")
        cutoff = timezone.now() + grace
        try:
            with transaction.atomic():
                # Concurrent rolls of one key wait here on PostgreSQL; elsewhere the unique
                # one-to-one link decides (IntegrityError below).
                self.select_for_update().filter(pk=key.pk).first()
                successor = self.filter(rolled_from=key).first()
                if successor is not None:
                    raise AlreadyRolled(successor)
                return self._roll(key, cutoff, by)
        except IntegrityError:
            raise AlreadyRolled(self.filter(rolled_from=key).first()) from None

    def _roll(self, key: APIKey, cutoff: datetime.datetime, by: Any) -> tuple[APIKey, str]:
        new, raw = self.create_key(
            name=key.name,
            owner=key.owner,
            scopes=list(key.scopes),
            allowed_networks=list(key.allowed_networks),
            plan=key.plan,
            rate_limits=key.rate_limits,
            expires_at=key.expires_at,
            lineage=key.lineage,
            rolled_from=key,
            created_by=by if by is not None and by.is_authenticated else None,
        )
        if key.expires_at is None or key.expires_at > cutoff:
            key.expires_at = cutoff
            key.save(update_fields=["expires_at"])
        return new, raw


class APIKey(AbstractCredential):
    kind = "api_key"

    public_id = models.CharField(
        _("public id"), max_length=crypto.PUBLIC_ID_LENGTH, unique=True, editable=False
    )
    key_hash = models.CharField(_("key digest"), max_length=64, unique=True, editable=False)
    rolled_from = models.OneToOneField(
        "self",
        verbose_name=_("rolled from"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="rolled_to",
    )

    objects = APIKeyManager()

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        permissions = [
            ("issue_for_others", _("Can issue credentials acting as other (non-staff) users")),
        ]

    def assign_new_secret(self) -> str:
        """Give this unsaved key a fresh secret; returns the raw key (shown once, never stored)."""
        if self.pk is not None:
            raise ValueError("Only a new key gets a secret; roll an existing key instead.")
        parsed = crypto.generate_key(conf.KEY_PREFIX)
        self.public_id, self.key_hash = parsed.public_id, parsed.digest
        return parsed.raw

    assign_new_key = assign_new_secret


_digest_lookup: CompiledLookup[APIKey] = CompiledLookup(
    lambda digest: APIKey._default_manager.select_related("owner").filter(key_hash=digest)
)

_public_id_lookup: CompiledLookup[APIKey] = CompiledLookup(
    lambda public_id: APIKey._default_manager.select_related("owner").filter(public_id=public_id)
)
