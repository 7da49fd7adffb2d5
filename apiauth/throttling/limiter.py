"""Which limits apply to a request, and deciding them through the configured backend.

The identity of a request's buckets is its credential's *lineage* (so rolling a key keeps its
usage), else the user, else the client address (an IPv6 client's /64; ``unknown`` shared by
every client whose address cannot be known). Every key of one decision carries that identity
as a Redis Cluster hash tag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from apiauth.conf import conf
from apiauth.credentials import Credential
from apiauth.net import client_key
from apiauth.store import Call, Check, StaleCredential, StoreUnavailable, get_store
from apiauth.store.keys import key_for, keys_for, lineage_identity
from apiauth.throttling import gcra, local
from apiauth.throttling.rates import InvalidLimit, Limit, merge_specs, parse_limits

logger = logging.getLogger("apiauth.throttling")

RESULT_ATTR = "apiauth_ratelimit"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision as the response sees it; ``decision`` is ``None`` when the store was down."""

    decision: gcra.Decision | None
    failed_open: bool = False


class RateLimitUnavailable(Exception):
    """The store is down and the policy is to fail closed."""


def identity(credential: Credential | None, user: Any, client_ip: str | None) -> str:
    if credential is not None:
        return lineage_identity(credential.lineage)
    if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
        return f"u{user.pk}"
    return f"a{client_key(client_ip)}"


def plan_limits(credential: Credential | None) -> tuple[Limit, ...]:
    """The credential's plan merged with its own overrides; anonymous limits without one."""
    return plan_limits_named(credential)[0]


def plan_limits_named(
    credential: Credential | None,
) -> tuple[tuple[Limit, ...], tuple[str, ...]]:
    """:func:`plan_limits` and the names of their keys (:func:`plan_key_names`).

    Remembered per plan and overrides object (a cached credential's overrides are the same
    object on every request) until the settings change, so a problem with either is logged
    once per process, not on every request.
    """
    if credential is None:
        spec = conf.ANONYMOUS_LIMITS
        limits = parse_limits(spec) if spec else ()
        return limits, tuple(plan_key_names(limits))
    derived = plan_memo()
    key = (credential.plan, id(credential.limits))
    hit = derived.get(key)
    if hit is not None and hit[0] is credential.limits:
        return hit[1]  # type: ignore[no-any-return]
    limits = _plan_limits(credential)
    named = (limits, tuple(plan_key_names(limits)))
    if len(derived) >= MAX_DERIVED:
        derived.clear()
    derived[key] = (credential.limits, named)
    return named


MAX_DERIVED = 1024


def plan_memo() -> dict[Any, Any]:
    """:func:`plan_limits_named`' memo, forgotten when the settings change."""
    return conf.derive(dict, key="plan_limits")


def _plan_limits(credential: Credential) -> tuple[Limit, ...]:
    plans = conf.PLANS
    # A plan removed from settings must not leave its keys unlimited: the default plan applies.
    base = plans.get(credential.plan or "") or plans.get(conf.DEFAULT_PLAN or "")
    if credential.plan and credential.plan not in plans:
        logger.warning("credential %s names unknown plan %r", credential.id, credential.plan)
    try:
        spec = merge_specs(base, credential.limits)
        return parse_limits(spec) if spec else ()
    except InvalidLimit as exc:
        # Overrides validated against an older plan may no longer combine: keep the plan.
        logger.error("credential %s: rate-limit overrides ignored: %s", credential.id, exc)
        return parse_limits(base) if base else ()


def plan_key_names(limits: Sequence[Limit]) -> list[str]:
    return [limit.name if limit.kind == "bucket" else f"q:{limit.name}" for limit in limits]


def decide(
    ident: str,
    limits: Sequence[Limit],
    key_names: Sequence[str],
    cost: int,
    *,
    debit: bool = True,
    check: Check | None = None,
) -> Outcome:
    """Run one decision in the store; applies the failure mode when the store cannot decide.

    Every decision goes to the store, refusals included: a worker that answered a refusal from
    its own memory would keep refusing after an operator's reset on another worker. With a
    ``check`` (a cached credential's version), the store confirms the credential in the same
    round trip, or :class:`StaleCredential` is raised (also when the store cannot be asked:
    the credential must then come from the database).
    """
    return run(prepare(ident, limits, key_names, cost, debit=debit, check=check))


def prepare(
    ident: str,
    limits: Sequence[Limit],
    key_names: Sequence[str],
    cost: int,
    *,
    debit: bool = True,
    check: Check | None = None,
) -> Call:
    """The store's call for one decision (see :func:`decide`), to :func:`run` now or keep."""
    return Call(tuple(keys_for(ident, key_names)), tuple(limits), cost, debit, check)


def run(call: Call) -> Outcome:
    """:func:`decide` a prepared call."""
    if not call.limits and call.check is None:
        return Outcome(None)
    try:
        return Outcome(get_store().decide(call))
    except StoreUnavailable as exc:
        if call.check is not None:
            raise StaleCredential(call.check.key) from exc
        return degraded(call.keys, call.limits, call.cost, call.debit, str(exc))


def degraded(
    keys: Sequence[str], limits: Sequence[Limit], cost: int, debit: bool, reason: str
) -> Outcome:
    """The decision while the store cannot make it, as ``RATELIMIT_FAILURE_MODE`` says:
    ``"local"`` decides in this process with its share of each limit, ``"closed"`` refuses
    (503), ``"open"`` admits. Each is counted and logged at most every few seconds."""
    mode = conf.RATELIMIT_FAILURE_MODE
    if mode == "closed":
        raise RateLimitUnavailable(reason)
    count_failure(reason, mode)
    if mode == "local" and limits:
        return Outcome(local.decide(keys, limits, cost, debit=debit))
    return Outcome(None, failed_open=True)


failures_open = 0


WARNING_INTERVAL = 10.0
_warned_at = -WARNING_INTERVAL
_unwarned = 0


def count_failure(reason: str, mode: str = "open") -> None:
    """A decision the store could not make: a counter for metrics, and a warning for the logs
    at most every ``WARNING_INTERVAL`` seconds (an outage must not turn every request into a
    log line)."""
    global failures_open, _warned_at, _unwarned
    failures_open += 1
    _unwarned += 1
    now = time.monotonic()
    if now - _warned_at >= WARNING_INTERVAL:
        what = "rate limits decided in this process" if mode == "local" else "rate limiting skipped"
        logger.warning("%s for %d request(s), store unavailable: %s", what, _unwarned, reason)
        _warned_at, _unwarned = now, 0


def remember(request: HttpRequest, outcome: Outcome) -> None:
    """Keep the latest decision on the Django request for the headers middleware."""
    setattr(request, RESULT_ATTR, outcome)


def credential_state(credential: Credential) -> tuple[gcra.Decision | None, str | None]:
    """A credential's limits as they stand now, without debiting (for the admin): its plan's,
    and each view scope's (``SCOPE_RATES``), which it meets on the views that declare one."""
    plan, plan_names = plan_limits_named(credential)
    limits, names = list(plan), list(plan_names)
    for scope, spec in sorted(conf.SCOPE_RATES.items()):
        for limit in parse_limits(spec, name=scope):
            limits.append(limit)
            names.append(f"s:{scope}:{limit.name}")
    if not limits:
        return None, None
    ident = identity(credential, None, None)
    keys = keys_for(ident, names)
    try:
        return get_store().evaluate(keys, limits, 1, debit=False), None
    except StoreUnavailable as exc:
        return None, str(exc)


def reset_credential(credential: Credential) -> int:
    """Forget the buckets and quotas of a credential's lineage (its plan's and its view
    scopes'), never its revocation marks or version token. Returns the keys deleted.

    Takes effect on every worker at once: no worker keeps decisions of its own (a worker
    deciding locally during an outage forgets its share too).
    """
    tag = key_for(identity(credential, None, None), "")
    tag = tag[: tag.rindex("}") + 1]
    local.forget(tag)
    return get_store().reset(tag)
