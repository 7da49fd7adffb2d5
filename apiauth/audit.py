"""Audit trail: structured records on the ``apiauth.audit`` logger, and rows for operator actions.

Records carry public ids, reason codes and addresses, never a secret: callers pass identifiers,
not raw credentials, and nothing here formats a request header.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.contrib.auth import get_user_model

from apiauth.models import AbstractCredential, AuditEvent

logger = logging.getLogger("apiauth.audit")

_acting: ContextVar[tuple[Any, str | None] | None] = ContextVar("apiauth_acting", default=None)


@contextmanager
def acting(actor: Any, client_ip: str | None = None) -> Iterator[None]:
    """Attribute the audit rows written inside the block (deletions) to ``actor``."""
    token = _acting.set((actor, client_ip))
    try:
        yield
    finally:
        _acting.reset(token)


def record_deletion(sender: Any, instance: AbstractCredential, **kwargs: Any) -> None:
    """``pre_delete`` receiver: every deletion of a credential is audited, however it happens
    (the admin, a cascade from its owner, code). Connected in ``AppConfig.ready()``."""
    actor, client_ip = _acting.get() or (None, None)
    origin = kwargs.get("origin")
    origin_model = getattr(origin, "model", type(origin))
    reason = ""
    if origin is not None and origin_model is get_user_model():
        owner = instance.owner
        reason = f"owner {owner.get_username() if owner else '?'} deleted"
    record("delete", instance, actor=actor, client_ip=client_ip, reason=reason)


def record(
    action: str,
    credential: AbstractCredential | Any,
    *,
    actor: Any = None,
    client_ip: str | None = None,
    reason: str = "",
    **details: Any,
) -> AuditEvent:
    """Persist and log an operator action (issue, update, roll, revoke, delete)."""
    public_id = getattr(credential, "public_id", str(credential.pk))
    authenticated = actor is not None and actor.is_authenticated
    event = AuditEvent.objects.create(
        action=action,
        credential_kind=credential.kind,
        credential_id=public_id,
        actor=actor if authenticated and actor.pk is not None else None,
        actor_repr=(actor.get_username() if authenticated else "system")[:150],
        client_ip=client_ip,
        reason=reason[:500],
        details=details,
    )
    logger.info(
        "%s %s %s by %s",
        action,
        credential.kind,
        public_id,
        event.actor_repr,
        extra={
            "apiauth": {
                "event": action,
                "credential_kind": credential.kind,
                "credential_id": public_id,
                "actor": event.actor_repr,
                "client_ip": client_ip,
                "reason": reason,
                **details,
            }
        },
    )
    return event


def auth_failure(code: str, *, kind: str, credential_id: str | None, client_ip: str | None) -> None:
    """Log a failed authentication. Logged only: attack traffic must not write rows."""
    logger.warning(
        "authentication failed: %s (%s %s) from %s",
        code,
        kind,
        credential_id or "-",
        client_ip or "-",
        extra={
            "apiauth": {
                "event": "auth_failure",
                "reason": code,
                "credential_kind": kind,
                "credential_id": credential_id,
                "client_ip": client_ip,
            }
        },
    )


def lockout(*, client_ip: str | None, seconds: float) -> None:
    """An address has exhausted its failed-authentication allowance."""
    logger.warning(
        "client %s locked out after repeated authentication failures for %.0f s",
        client_ip or "-",
        seconds,
        extra={
            "apiauth": {
                "event": "lockout",
                "client_ip": client_ip,
                "seconds": round(seconds, 3),
            }
        },
    )


def lockout_failures(*, client_ip: str | None, count: int) -> None:
    """A summary of failures answered 429 during a lockout (not logged one by one)."""
    logger.warning(
        "%d more failed authentications from %s during its lockout",
        count,
        client_ip or "-",
        extra={"apiauth": {"event": "lockout_failures", "client_ip": client_ip, "count": count}},
    )
