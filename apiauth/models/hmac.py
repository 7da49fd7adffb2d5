"""HMAC credentials: an access key id and a secret kept encrypted, for SigV4 signing."""

from __future__ import annotations

import datetime
import secrets
from typing import Any

from django.db import models, router
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth import crypto, encryption, sigv4
from apiauth.compiled import CompiledLookup
from apiauth.models.base import AbstractCredential, CredentialManager, RevokedCredential

ACCESS_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ACCESS_KEY_ID_LENGTH = 20
HMAC_SECRET_LENGTH = 43


class HMACCredentialManager(CredentialManager["HMACCredential"]):
    def create_credential(self, **fields: Any) -> tuple[HMACCredential, str]:
        """Create a credential; returns it with its secret, shown once: only its encryption
        is stored (see :meth:`create_with_secret`)."""
        return self.create_with_secret(**fields)

    def get_by_access_key_id(self, access_key_id: str) -> HMACCredential | None:
        """The credential, its owner joined, in one query compiled once per thread."""
        return _access_key_lookup.get(access_key_id, using=router.db_for_read(self.model))

    def rotate_secret(
        self, credential: HMACCredential, grace: datetime.timedelta, *, by: Any = None
    ) -> str:
        """A new secret; the current one keeps verifying for ``grace``, then stops. A previous
        secret still in its grace period is dropped: two secrets at most."""
        if credential.is_revoked:
            raise RevokedCredential("A revoked credential cannot be rotated.")
        secret = generate_hmac_secret()
        credential.previous_secret = credential.secret
        credential.previous_secret_expires_at = timezone.now() + grace
        credential.secret = credential.encrypt_secret(secret)
        credential.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        credential.forget_secrets()
        return secret

    def reencrypt(self) -> int:
        """Encrypt every secret again with the first of ``ENCRYPTION_KEYS``; returns how many
        credentials changed. Run after putting a new key first, before removing the old one."""
        changed = 0
        for credential in self.filter(revoked_at__isnull=True).iterator():
            tokens = [credential.secret, credential.previous_secret]
            if not any(t and encryption.needs_reencryption(t) for t in tokens):
                continue
            fields = ["secret"]
            credential.secret = credential.encrypt_secret(credential.decrypt(credential.secret))
            if credential.previous_secret:
                credential.previous_secret = credential.encrypt_secret(
                    credential.decrypt(credential.previous_secret)
                )
                fields.append("previous_secret")
            credential.save(update_fields=fields)
            changed += 1
        return changed


def generate_access_key_id() -> str:
    return "".join(secrets.choice(ACCESS_KEY_ID_ALPHABET) for _ in range(ACCESS_KEY_ID_LENGTH))


def generate_hmac_secret() -> str:
    return "".join(secrets.choice(crypto.ALPHABET) for _ in range(HMAC_SECRET_LENGTH))


class HMACCredential(AbstractCredential):
    """A public access key id and a shared secret for signing requests (AWS SigV4).

    The secret must be readable to verify signatures, so it is stored encrypted
    (:mod:`apiauth.encryption`, bound to this access key id). After a rotation the previous
    secret verifies too until ``previous_secret_expires_at``.
    """

    kind = "hmac"

    access_key_id = models.CharField(
        _("access key id"), max_length=ACCESS_KEY_ID_LENGTH, unique=True, editable=False
    )
    secret = models.TextField(_("secret (encrypted)"), editable=False)
    previous_secret = models.TextField(
        _("previous secret (encrypted)"), blank=True, default="", editable=False
    )
    previous_secret_expires_at = models.DateTimeField(
        _("previous secret valid until"), null=True, blank=True, editable=False
    )

    objects = HMACCredentialManager()

    class Meta:
        verbose_name = _("HMAC credential")
        verbose_name_plural = _("HMAC credentials")
        ordering = ["-created_at"]

    @property
    def public_id(self) -> str:  # type: ignore[override]
        return self.access_key_id

    def assign_new_secret(self) -> str:
        if self.pk is not None:
            raise ValueError("Only a new credential gets a secret; rotate an existing one.")
        self.access_key_id = generate_access_key_id()
        secret = generate_hmac_secret()
        self.secret = self.encrypt_secret(secret)
        return secret

    def encrypt_secret(self, secret: str) -> str:
        return encryption.encrypt(secret.encode(), f"hmac:{self.access_key_id}")

    def decrypt(self, token: str) -> str:
        return encryption.decrypt(token, f"hmac:{self.access_key_id}").decode()

    def forget_secrets(self) -> None:
        self.__dict__.pop("_secrets", None)
        self.__dict__.pop("_signing_keys", None)

    def signing_keys(self, scheme: Any, date: str, region: str, service: str) -> list[bytes]:
        """The derived SigV4 keys to try, current secret first: decrypted once per copy and
        derived once per day, region and service (a worker's copy serves many requests)."""
        # The names the derivation reads, not the scheme: a dataclass hashes in Python.
        cache_key = (scheme.secret_prefix, scheme.terminator, date, region, service)
        memo: dict[Any, list[bytes]] | None = self.__dict__.get("_signing_keys")
        if memo is None:
            memo = self.__dict__["_signing_keys"] = {}
        keys = memo.get(cache_key)
        if keys is None:
            keys = [sigv4.signing_key(scheme, s, date, region, service) for s in self.secrets()]
            if len(memo) > 16:
                memo.clear()
            memo[cache_key] = keys
        if len(keys) == 1:
            return list(keys)
        expires = self.previous_secret_expires_at
        if expires is None or expires <= timezone.now():
            return keys[:1]
        return list(keys)

    def secrets(self) -> list[str]:
        """The plaintext secrets, current first (the previous one while it is kept)."""
        cached = self.__dict__.get("_secrets")
        if cached is None:
            cached = [self.decrypt(self.secret)]
            if self.previous_secret:
                cached.append(self.decrypt(self.previous_secret))
            self.__dict__["_secrets"] = cached
        return list(cached)


_access_key_lookup: CompiledLookup[HMACCredential] = CompiledLookup(
    lambda akid: HMACCredential._default_manager.select_related("owner").filter(access_key_id=akid)
)
