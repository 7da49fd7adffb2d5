"""The audit trail and the revocation rows: what must never be lost lives here."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
        CONSENT = "consent", _("authorized by a person")
        SIGN_OUT = "sign_out", _("signed out")

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
