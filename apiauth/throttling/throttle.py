"""The DRF throttle: every limit of a request decided in one Redis round trip."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from apiauth import revocation
from apiauth.conf import conf
from apiauth.credentials import Credential, authenticator_of, claim_made
from apiauth.errors import CostExceedsLimit, RateLimitServiceUnavailable
from apiauth.net import get_client_ip
from apiauth.store import Call, Check, ClaimTaken, MarksUnloaded, StaleCredential, TokenRevoked
from apiauth.throttling.limiter import (
    Outcome,
    RateLimitUnavailable,
    identity,
    plan_limits_named,
    prepare,
    remember,
    run,
)
from apiauth.throttling.rates import parse_limits

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MEMO_ATTR = "_apiauth_throttle_outcome"
CALLS = "throttle_calls"
"""The kept calls' memo in :meth:`~apiauth.conf.Settings.derive` (see
:meth:`TokenBucketThrottle.get_call`), forgotten when the settings change."""
MAX_CALLS = 4096


def request_method(request: Request) -> str | None:
    """The method the request is judged as: DRF's clone for metadata and the browsable API
    sets its own on the DRF request (judged "as POST"); else Django's, read directly, since
    DRF hands an attribute on through a caught exception."""
    method: str | None = request.__dict__.get("method") or request._request.method
    return method


class TokenBucketThrottle(BaseThrottle):
    """Token buckets and quotas from the credential's plan, the view's ``throttle_scope`` and
    the anonymous limits, checked and debited together.

    ``throttle_cost`` on a view (an int, or a dict per method) sets a request's cost; otherwise
    unsafe methods cost ``APIAUTH["UNSAFE_METHOD_COST"]``. A cost above a limit's capacity is
    a 429 that says it can never succeed. The decision is remembered on the request, so running
    the throttles early (as :class:`~apiauth.permissions.HasScopes` does) never debits twice.
    """

    scope_attr = "throttle_scope"

    def __init__(self) -> None:
        self.outcome: Outcome | None = None

    def get_cost(self, request: Request, view: Any) -> int:
        """Units this request takes from every limit: at least 1 (check ``apiauth.E011``)."""
        declared = getattr(view, "throttle_cost", None)
        method = request_method(request) or "GET"
        if declared is not None and isinstance(declared, Mapping):  # an ABC check: only if set
            declared = declared.get(method)
        if declared is None:
            if method in SAFE_METHODS:
                return 1
            declared = conf.UNSAFE_METHOD_COST
        # A cost below 1 would give units back; the checks refuse it, this never honours it.
        return max(1, int(declared))

    def get_limits(self, request: Request, view: Any) -> tuple[list[Any], list[str]]:
        credential = request.auth if isinstance(request.auth, Credential) else None
        plan, plan_names = plan_limits_named(credential)
        limits, names = list(plan), list(plan_names)
        partition = credential.partition if credential is not None else None
        person = conf.PERSON_LIMITS if partition is not None else None
        if person:
            # A person's own share of the application's limits, in the application's slot.
            for limit in parse_limits(person, name="person"):
                limits.append(limit)
                names.append(f"p:{partition}:{limit.name}")
        scope = getattr(view, self.scope_attr, None)
        if scope and scope in conf.SCOPE_RATES:
            for limit in parse_limits(conf.SCOPE_RATES[scope], name=scope):
                limits.append(limit)
                names.append(f"s:{scope}:{limit.name}")
        return limits, names

    def allow_request(self, request: Request, view: Any) -> bool:
        # Read from the instance: DRF's attribute fallback would raise and catch on a miss.
        memo: Outcome | None = request.__dict__.get(MEMO_ATTR)
        if memo is None:
            try:
                memo = self.decide_confirmed(request, view)
            except TokenRevoked:
                credential = request.auth
                assert isinstance(credential, Credential)
                raise authenticator_of(request).revoked(request, credential) from None
            except ClaimTaken:
                credential = request.auth
                assert isinstance(credential, Credential)
                raise authenticator_of(request).replayed(request, credential) from None
            if isinstance(request.auth, Credential):
                claim_made(request, request.auth)  # made whatever the limits decided
            setattr(request, MEMO_ATTR, memo)
            remember(request._request, memo)
        self.outcome = memo
        return memo.decision is None or memo.decision.allowed

    def decide_confirmed(self, request: Request, view: Any) -> Outcome:
        """:meth:`decide`, after whatever the store could not confirm was settled: a stale
        copy of the credential (authenticated again from the database: a 401 now if it was
        revoked) or a token's revocation marks the store has not loaded (loaded, and the
        database asked). Each settles for good, so this ends within three decisions."""
        while True:
            try:
                return self.decide(request, view)
            except StaleCredential:
                self.reauthenticate(request)
            except MarksUnloaded:
                credential = request.auth
                assert isinstance(credential, Credential) and credential.check is not None
                settled = revocation.settle(credential.check)
                request.auth = dataclasses.replace(credential, check=settled)

    def decide(self, request: Request, view: Any) -> Outcome:
        """One round trip: every limit of the request and, for a cached credential, its
        version (:mod:`apiauth.cache`)."""
        credential = request.auth if isinstance(request.auth, Credential) else None
        cost = self.get_cost(request, view)
        call = self.get_call(request, view, credential, cost)
        for limit in call.limits:
            if cost > limit.capacity:
                raise CostExceedsLimit(limit.name, limit.capacity, cost)
        try:
            return run(call)
        except RateLimitUnavailable:
            raise RateLimitServiceUnavailable() from None

    def get_call(
        self, request: Request, view: Any, credential: Credential | None, cost: int
    ) -> Call:
        """The store's call for this request. A worker's copy of a credential (its
        :class:`~apiauth.store.Check`) makes the same call on every request to a view scope
        at one cost, so that call is kept, with the store's encoding of it, while the copy
        stands and the settings are unchanged: the limits, their keys and the command are
        worked out once. Not when :meth:`get_limits` is overridden (it may read the request),
        nor for a check made for one request (a token's marks, a signed write's claim)."""
        check = credential.check if credential is not None else None
        kept = (
            check is not None
            and not check.revocations
            and not check.claim
            and type(self).get_limits is TokenBucketThrottle.get_limits
        )
        if kept:
            calls: dict[Any, tuple[Check | None, Call]] = conf.derive(dict, key=CALLS)
            memo_key = (id(check), getattr(view, self.scope_attr, None), cost)
            hit = calls.get(memo_key)
            if hit is not None and hit[0] is check:  # not another check under a reused id
                return hit[1]
        # A credential is its own identity: the client's address is worked out only without.
        client_ip = get_client_ip(request) if credential is None else None
        ident = identity(credential, request.user, client_ip)
        limits, names = self.get_limits(request, view)
        call = prepare(ident, limits, names, cost, check=check)
        if kept:
            if len(calls) >= MAX_CALLS:
                calls.clear()
            calls[memo_key] = (check, call)
        return call

    def reauthenticate(self, request: Request) -> None:
        user, credential = authenticator_of(request).reauthenticate(request)
        request.user, request.auth = user, credential

    def wait(self) -> float | None:
        decision = self.outcome.decision if self.outcome else None
        if decision is None or decision.allowed:
            return None
        return decision.retry_after_us / 1_000_000
