"""A database router that reads from a replica that lags (the "other" test database)."""

from __future__ import annotations

from typing import Any


class LaggingReplicaRouter:
    """Reads of revocations go to "other", which never saw a write; writes to "default"."""

    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return "other" if model._meta.model_name == "revocation" else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "default" if model._meta.model_name == "revocation" else None
