"""What every credential kind shares: identity, reach, limits, lifecycle and revocation.

A model announces what it changed (:mod:`apiauth.signals`); it never reaches for the caches
or the key ring that listen.
"""

from __future__ import annotations

import datetime
import time
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, router
from django.db.models.base import ModelState
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apiauth import signals, usage
from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.models.validators import (
    validate_name,
    validate_networks,
    validate_plan,
    validate_scopes,
)
from apiauth.net import parse_networks
from apiauth.scopes import parse_scopes
from apiauth.throttling.rates import InvalidLimit, merge_specs, parse_limits

if TYPE_CHECKING:
    from apiauth.store.base import Check

ISSUE_FOR_OTHERS = "apiauth.issue_for_others"
REVOCATION_FIELDS = frozenset({"revoked_at", "revoked_by", "revoked_reason"})


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


DUE_ATTR = "_apiauth_use_due"
"""Where a credential keeps when its next use is recorded: (last use, interval, Unix time)."""


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
            # An update() that post_save does not announce: the copies hear it from this.
            signals.credentials_changed.send(
                sender=type(self),
                lineages=[self.lineage_id],
                using=router.db_for_write(type(self)),
            )
        return bool(updated)

    def assign_new_secret(self) -> str:
        """Give this unsaved credential its identifiers and a fresh secret; returns the secret
        as the client will present it (shown once)."""
        raise NotImplementedError

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
        if not self.touch_is_due(now):
            return
        # This copy may be shared by a worker's threads: the first one due writes.
        self.last_used_at, self.last_used_ip = now, ip
        if defer:
            usage.defer(self, now, ip)
        else:
            self.write_last_used(now, ip)

    def touch_is_due(self, now: datetime.datetime | None = None) -> bool:
        """Whether :meth:`touch` would record a use now: callers can skip working out what it
        records (the client's address) on the other requests of the interval."""
        last = self.last_used_at
        if last is None:
            return True
        interval = conf.LAST_USED_INTERVAL
        if now is not None:
            return (now - last).total_seconds() >= interval
        # Asked on every request: the deadline is worked out once per use recorded, and the
        # clock read as a float.
        due = self.__dict__.get(DUE_ATTR)
        if due is None or due[0] is not last or due[1] != interval:
            due = (last, interval, last.timestamp() + interval)
            self.__dict__[DUE_ATTR] = due
        return time.time() >= due[2]

    def write_last_used(self, now: datetime.datetime, ip: str | None) -> None:
        interval = datetime.timedelta(seconds=conf.LAST_USED_INTERVAL)
        # Conditional, so concurrent workers write once and a stale copy never goes backwards.
        type(self)._default_manager.filter(pk=self.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lte=now - interval)
        ).update(last_used_at=now, last_used_ip=ip)


CredentialT = TypeVar("CredentialT", bound="AbstractCredential")


class CredentialManager(models.Manager[CredentialT]):
    """What every credential kind's manager offers: the lifecycle filters and issuing."""

    def get_queryset(self) -> CredentialQuerySet:
        return CredentialQuerySet(self.model, using=self._db)

    def usable(self) -> CredentialQuerySet:
        return self.get_queryset().usable()

    def create_with_secret(self, **fields: Any) -> tuple[CredentialT, str]:
        """Create a credential and return it with its secret, which is never stored in the
        clear nor shown again (the model's ``assign_new_secret()`` makes it).

        Trusted code: no permission is asked. Callers acting for a person check
        :func:`may_act_as` for the owner first (the admin does).
        """
        obj = self.model(**fields)
        secret = obj.assign_new_secret()
        obj.full_clean()
        obj.save(force_insert=True)
        return obj, secret


def private_copy(user: Any) -> Any:
    """A request's own copy of a cached owner: what one request sets on ``request.user``
    (Django's permission caches included) must not reach the next, nor another thread."""
    if user is None:
        return None
    # copy.copy(), without its __reduce_ex__ round: this runs on every request. A copied
    # __dict__ put in place costs less than filling the new instance's own.
    clone = user.__class__.__new__(user.__class__)
    clone.__dict__ = user.__dict__.copy()
    state = clone._state = ModelState.__new__(ModelState)
    state.__dict__ = user._state.__dict__.copy()
    state.fields_cache = user._state.fields_cache.copy()
    return clone
