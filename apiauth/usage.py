"""``last_used_at`` written after the response has gone, not while the client waits.

Authentication marks a credential as used (at most once a minute per credential and worker,
see :meth:`~apiauth.models.AbstractCredential.touch`); the write happens when Django sends
``request_finished``, which WSGI servers trigger once the response has been sent.
"""

from __future__ import annotations

import datetime
import logging
import threading
from typing import Any

logger = logging.getLogger("apiauth.usage")

_pending = threading.local()


def defer(obj: Any, now: datetime.datetime, ip: str | None) -> None:
    queue: list[tuple[Any, datetime.datetime, str | None]] = _pending.__dict__.setdefault(
        "queue", []
    )
    queue.append((obj, now, ip))


def flush(**kwargs: Any) -> None:
    """``request_finished`` receiver: write this thread's pending uses."""
    queue = _pending.__dict__.pop("queue", None)
    for obj, now, ip in queue or ():
        try:
            obj.write_last_used(now, ip)
        except Exception:
            # A bookkeeping write must never turn into an error after a good response.
            logger.exception("could not record the use of %s", obj)
