from __future__ import annotations

import copy
import dataclasses
import datetime
import secrets
import unicodedata
import uuid
from typing import Any, ClassVar, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth import cache, crypto, encryption, jose, signals, sigv4, usage
from apiauth.cache import Check, CredentialCache
from apiauth.compiled import CompiledLookup
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.net import parse_networks
from apiauth.scopes import parse_scopes
from apiauth.throttling.rates import InvalidLimit, merge_specs, parse_limits


def validate_scopes(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Scopes must be a list of strings."), code="invalid_scopes")
    parse_scopes(value)


def validate_networks(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError(_("Allowed IPs must be a list of strings."), code="invalid_networks")
    parse_networks(value)


# Control, format (bidi overrides), separator and private characters: they reach operators'
# terminals through the commands' output, or disguise one name as another.
FORBIDDEN_NAME_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
ISSUE_FOR_OTHERS = "apiauth.issue_for_others"
REVOCATION_FIELDS = frozenset({"revoked_at", "revoked_by", "revoked_reason"})


def validate_name(value: str) -> None:
    if any(unicodedata.category(char) in FORBIDDEN_NAME_CATEGORIES for char in value):
        raise ValidationError(
            _("Names may not contain control characters, line breaks or invisible formatting."),
            code="invalid_name",
        )


def may_act_as(actor: Any, owner: Any) -> bool:
    """Whether ``actor`` may make a credential act as ``owner`` (issue, re-assign, roll).

    A superuser may choose anyone. Other users may choose themselves or no owner; with the
    ``apiauth.issue_for_others`` permission, also any other user who is neither staff nor a
    superuser. Code calling the manager and the management commands is trusted and does not
    ask (the commands refuse a staff owner without ``--allow-staff-owner``).
    """
    if owner is None or getattr(actor, "is_superuser", False):
        return True
    if actor is None or not getattr(actor, "is_authenticated", False):
        return False
    if owner.pk == actor.pk:
        return True
    return bool(actor.has_perm(ISSUE_FOR_OTHERS) and not owner.is_staff and not owner.is_superuser)


class RevokedCredential(ValueError):
    """A revoked credential cannot be changed, rolled or un-revoked."""


class AlreadyRolled(ValueError):
    """The key already has a successor: roll that one instead."""

    def __init__(self, successor: Any) -> None:
        super().__init__("This key was already rolled.")
        self.successor = successor


def validate_plan(value: str) -> None:
    if value and value not in conf.PLANS:
        raise ValidationError(
            _("Unknown plan “%(plan)s”: choose one of the plans in APIAUTH['PLANS'].")
            % {"plan": value},
            code="unknown_plan",
        )


class CredentialQuerySet(models.QuerySet[Any]):
    def usable(self) -> CredentialQuerySet:
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now)
        )

    def revoked(self) -> CredentialQuerySet:
        return self.filter(revoked_at__isnull=False)

    def expired(self) -> CredentialQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__lte=timezone.now())


class AbstractCredential(models.Model):
    """What every credential kind shares: identity, reach, limits and lifecycle."""

    name = models.CharField(_("name"), max_length=100, validators=[validate_name])
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text=_(
            "Requests made with this credential act as this user. Leave empty for a machine client."
        ),
    )
    scopes = models.JSONField(_("scopes"), default=list, blank=True, validators=[validate_scopes])
    allowed_networks = models.JSONField(
        _("allowed IP networks"),
        default=list,
        blank=True,
        validators=[validate_networks],
        help_text=_("IPv4/IPv6 addresses or CIDR networks. Empty means from anywhere."),
    )
    plan = models.CharField(
        _("plan"), max_length=50, blank=True, default="", validators=[validate_plan]
    )
    rate_limits = models.JSONField(
        _("rate-limit overrides"),
        null=True,
        blank=True,
        help_text=_(
            'Overrides merged over the plan, e.g. {"rate": "120/min", "burst": 20, '
            '"quotas": ["5000/day"]}. Empty: the plan as it is.'
        ),
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("revoked by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    revoked_reason = models.CharField(
        _("revocation reason"), max_length=500, blank=True, default="", editable=False
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
    )
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    last_used_ip = models.GenericIPAddressField(
        _("last used from"), null=True, blank=True, editable=False
    )
    idempotency_key = models.CharField(
        _("idempotency key"),
        max_length=64,
        null=True,
        blank=True,
        unique=True,
        editable=False,
        help_text=_("Set by the form that issued it, so a resubmission cannot issue another."),
    )

    lineage = models.UUIDField(_("lineage"), default=uuid.uuid4, db_index=True, editable=False)

    kind: ClassVar[str]
    public_id: str
    """Names the credential in the admin, logs, audit records and commands."""

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # Revocation is irreversible and a revoked credential is frozen: only revoke() writes
        # the revocation fields, and an update never touches them nor a revoked row (below),
        # so saving a copy loaded before the revocation cannot undo it.
        if getattr(self, "_loaded_revoked_at", None) is not None:
            raise RevokedCredential("A revoked credential cannot be changed.")
        if not self._state.adding and not kwargs.get("force_insert"):
            fields = kwargs.get("update_fields")
            if fields is None:
                fields = [f.name for f in self._meta.concrete_fields if not f.primary_key]
            kwargs["update_fields"] = [f for f in fields if f not in REVOCATION_FIELDS]
        super().save(*args, **kwargs)
        self._loaded_revoked_at = self.revoked_at

    def _do_update(self, base_qs: Any, *args: Any, **kwargs: Any) -> Any:
        # The UPDATE is conditional: a row revoked since this copy was loaded is left alone.
        updated = super()._do_update(base_qs.filter(revoked_at__isnull=True), *args, **kwargs)
        if not updated and base_qs.filter(pk=self.pk).exists():
            raise RevokedCredential("This credential was revoked meanwhile; it cannot be changed.")
        return updated

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().from_db(*args, **kwargs)
        instance._loaded_revoked_at = getattr(instance, "revoked_at", None)
        return instance

    def clean(self) -> None:
        super().clean()
        if getattr(self, "_loaded_revoked_at", None) is not None:
            raise ValidationError(
                _("This credential is revoked; revoked credentials cannot be changed."),
                code="revoked",
            )
        self.scopes = parse_scopes(self.scopes) if isinstance(self.scopes, list) else self.scopes
        if isinstance(self.allowed_networks, list):
            self.allowed_networks = parse_networks(self.allowed_networks)
        if self.rate_limits:
            self.validate_rate_limits()

    def validate_rate_limits(self) -> None:
        if not isinstance(self.rate_limits, dict):
            message = _("Rate-limit overrides must be a JSON object.")
            raise ValidationError({"rate_limits": ValidationError(message, code="invalid_limits")})
        plan = conf.PLANS.get(self.plan or conf.DEFAULT_PLAN or "")
        try:
            # Not compared with UNSAFE_METHOD_COST: a read-only key may hold less than a write
            # costs; a write through it is answered 429 cost_exceeds_limit.
            parse_limits(merge_specs(plan, self.rate_limits))
        except InvalidLimit as exc:
            # The code on the field's error: a dict of messages would drop it.
            error = ValidationError(str(exc), code="invalid_limits")
            raise ValidationError({"rate_limits": error}) from None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def status(self) -> str:
        if self.is_revoked:
            return "revoked"
        if self.is_expired:
            return "expired"
        return "active"

    def revoke(self, *, by: Any = None, reason: str = "") -> bool:
        """Revoke now. Returns ``False`` when it was already revoked (nothing changes)."""
        now = timezone.now()
        updated = (
            type(self)
            ._default_manager.filter(pk=self.pk, revoked_at__isnull=True)
            .update(
                revoked_at=now,
                revoked_by=by if by and by.is_authenticated else None,
                revoked_reason=reason[:500],
            )
        )
        self.refresh_from_db(fields=["revoked_at", "revoked_by", "revoked_reason"])
        self._loaded_revoked_at = self.revoked_at
        if updated:
            cache.invalidate([self.lineage_id], using=router.db_for_write(type(self)))
        return bool(updated)

    @property
    def lineage_id(self) -> str:
        """What the credential's rate limits, usage and cached copies belong to."""
        return str(self.lineage)

    def to_credential(self, check: Check | None = None, **changes: Any) -> Credential:
        """The request's credential; ``changes`` replace fields (a token of this key)."""
        fields: dict[str, Any] = {
            "kind": self.kind,
            "id": self.public_id,
            "scopes": frozenset(self.scopes),
            "plan": self.plan or conf.DEFAULT_PLAN,
            "owner": private_copy(self.owner),
            "expires_at": self.expires_at,
            "lineage": self.lineage_id,
            "limits": self.rate_limits or None,
            "check": check,
        }
        fields.update(changes)
        return Credential(**fields)

    def touch(self, ip: str | None, *, defer: bool = False) -> None:
        """Record use, writing at most once per ``LAST_USED_INTERVAL`` seconds per credential.

        With ``defer``, the write waits until the response has been sent (``usage``).
        """
        now = timezone.now()
        interval = datetime.timedelta(seconds=conf.LAST_USED_INTERVAL)
        if self.last_used_at is not None and now - self.last_used_at < interval:
            return
        # This copy may be shared by a worker's threads: the first one due writes.
        self.last_used_at, self.last_used_ip = now, ip
        if defer:
            usage.defer(self, now, ip)
        else:
            self.write_last_used(now, ip)

    def write_last_used(self, now: datetime.datetime, ip: str | None) -> None:
        interval = datetime.timedelta(seconds=conf.LAST_USED_INTERVAL)
        # Conditional, so concurrent workers write once and a stale copy never goes backwards.
        type(self)._default_manager.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lte=now - interval)
        ).update(last_used_at=now, last_used_ip=ip)


CredentialT = TypeVar("CredentialT", bound="AbstractCredential")


class CredentialManager(models.Manager[CredentialT]):
    """What every credential kind's manager offers: the lifecycle filters."""

    def get_queryset(self) -> CredentialQuerySet:
        return CredentialQuerySet(self.model, using=self._db)

    def usable(self) -> CredentialQuerySet:
        return self.get_queryset().usable()


class APIKeyManager(CredentialManager["APIKey"]):
    def create_key(self, **fields: Any) -> tuple[APIKey, str]:
        """Create a key and return it with its raw value, which is never stored or shown again.

        Trusted code: no permission is asked. Callers acting for a person check
        :func:`may_act_as` for the owner first (the admin does).
        """
        key = self.model(**fields)
        raw = key.assign_new_key()
        key.full_clean()
        key.save(force_insert=True)
        return key, raw

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

    def assign_new_key(self) -> str:
        """Give this unsaved key a fresh secret; returns the raw key (shown once, never stored)."""
        if self.pk is not None:
            raise ValueError("Only a new key gets a secret; roll an existing key instead.")
        parsed = crypto.generate_key(conf.KEY_PREFIX)
        self.public_id, self.key_hash = parsed.public_id, parsed.digest
        return parsed.raw


def private_copy(user: Any) -> Any:
    """A request's own copy of a cached owner: what one request sets on ``request.user``
    (Django's permission caches included) must not reach the next, nor another thread."""
    if user is None:
        return None
    clone = user.__class__.__new__(user.__class__)
    clone.__dict__.update(user.__dict__)
    clone._state = copy.copy(user._state)
    clone._state.fields_cache = dict(user._state.fields_cache)
    return clone


_digest_lookup: CompiledLookup[APIKey] = CompiledLookup(
    lambda digest: APIKey._default_manager.select_related("owner").filter(key_hash=digest)
)

_public_id_lookup: CompiledLookup[APIKey] = CompiledLookup(
    lambda public_id: APIKey._default_manager.select_related("owner").filter(public_id=public_id)
)

client_cache: CredentialCache[APIKey] = cache.register(
    CredentialCache(APIKey.objects.get_by_public_id, lambda key: str(key.lineage))
)
"""Copies of the API keys that obtained the tokens this worker has seen, by public id."""

key_cache: CredentialCache[APIKey] = cache.register(
    CredentialCache(APIKey.objects.get_by_digest, lambda key: str(key.lineage))
)
"""Copies of the API keys this worker has seen, by digest (see :mod:`apiauth.cache`)."""


ACCESS_KEY_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ACCESS_KEY_ID_LENGTH = 20
HMAC_SECRET_LENGTH = 43


class HMACCredentialManager(CredentialManager["HMACCredential"]):
    def create_credential(self, **fields: Any) -> tuple[HMACCredential, str]:
        """Create a credential and return it with its secret, which is shown once: only its
        encryption is stored. Trusted code, as ``APIKey.objects.create_key``."""
        credential = self.model(**fields)
        secret = credential.assign_new_secret()
        credential.full_clean()
        credential.save(force_insert=True)
        return credential, secret

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
        now = timezone.now()
        cache_key = (scheme, date, region, service)
        memo: dict[Any, list[bytes]] = self.__dict__.setdefault("_signing_keys", {})
        keys = memo.get(cache_key)
        if keys is None:
            keys = [sigv4.signing_key(scheme, s, date, region, service) for s in self.secrets()]
            if len(memo) > 16:
                memo.clear()
            memo[cache_key] = keys
        expires = self.previous_secret_expires_at
        if len(keys) > 1 and (expires is None or expires <= now):
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

hmac_cache: CredentialCache[HMACCredential] = cache.register(
    CredentialCache(HMACCredential.objects.get_by_access_key_id, lambda c: c.lineage_id)
)
"""Copies of the HMAC credentials this worker has seen, secrets decrypted, by access key id."""


class SigningKeyManager(models.Manager["SigningKey"]):
    def generate(
        self,
        algorithm: str | None = None,
        key_size: int | None = None,
        *,
        state: str = "next",
    ) -> SigningKey:
        """A new key pair, its private half encrypted (:mod:`apiauth.encryption`)."""
        settings = conf.JWT
        algorithm = algorithm or str(settings["SIGNING_ALGORITHM"])
        if algorithm == "RS256":
            key_size = key_size or int(settings["RSA_KEY_SIZE"])
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
        settings = conf.JWT
        horizon = timezone.now() - datetime.timedelta(
            seconds=int(settings["MAX_TOKEN_LIFETIME"]) + int(settings["LEEWAY"])
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
        their API key usable."""
        now = timezone.now()
        return self.filter(
            revoked_at__isnull=True, expires_at__gt=now, api_key__revoked_at=None
        ).filter(models.Q(api_key__expires_at__isnull=True) | models.Q(api_key__expires_at__gt=now))


class TokenFamily(models.Model):
    """The refresh tokens descending from one client-credentials grant (RFC 9700 §4.14).

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
        return f"{self.api_key.public_id} / {str(self.id)[:8]}"

    @property
    def public_id(self) -> str:
        return str(self.id)

    @property
    def is_live(self) -> bool:
        now = timezone.now()
        key = self.api_key
        return (
            self.revoked_at is None
            and self.expires_at > now
            and not key.is_revoked
            and not key.is_expired
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


class AuditEvent(models.Model):
    """An operator action on a credential. Read-only once written."""

    class Action(models.TextChoices):
        ISSUE = "issue", _("issued")
        UPDATE = "update", _("updated")
        ROLL = "roll", _("rolled")
        ROTATE = "rotate", _("secret rotated")
        PROMOTE = "promote", _("promoted")
        RETIRE = "retire", _("retired")
        REUSE = "reuse", _("refresh token reused")
        REVOKE = "revoke", _("revoked")
        DELETE = "delete", _("deleted")
        RESET_LIMITS = "reset_limits", _("rate limits reset")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    credential_kind = models.CharField(_("credential kind"), max_length=20)
    credential_id = models.CharField(_("credential public id"), max_length=64, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("actor"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    actor_repr = models.CharField(_("actor name"), max_length=150, blank=True)
    client_ip = models.GenericIPAddressField(_("client address"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.credential_kind} {self.credential_id}"


class Revocation(models.Model):
    """A revoked token, refresh family, or "issued before" moment: the source of truth of the
    revocation marks that the store caches (:mod:`apiauth.revocation`).

    Tokens of ``lineage`` issued at or before ``value`` (a Unix time) and naming ``name`` are
    refused until ``expires_at``, when every token the row can cover has expired anyway.
    """

    lineage = models.CharField(_("lineage"), max_length=64)
    name = models.CharField(_("mark"), max_length=40)
    value = models.FloatField(_("revokes tokens issued at or before"))
    expires_at = models.DateTimeField(_("kept until"), db_index=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    published = models.BooleanField(_("in the store"), default=False)

    class Meta:
        verbose_name = _("token revocation")
        verbose_name_plural = _("token revocations")
        constraints = [
            models.UniqueConstraint(fields=["lineage", "name"], name="apiauth_revocation_unique")
        ]
        indexes = [models.Index(fields=["published"], name="apiauth_revocation_pending")]

    def __str__(self) -> str:
        return f"{self.lineage} {self.name}"
