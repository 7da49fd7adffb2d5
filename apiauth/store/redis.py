"""The store in Redis: one server, a primary behind Sentinel, or a Redis Cluster.

Every command goes through :meth:`RedisStore._execute` on a connection this thread keeps per
server, encoded here: redis-py's generic encoding, retries and pool bookkeeping cost more than
the command on the hot path. That one place also decides what a failure means:

- a server that cannot serve (connection errors, timeouts, ``READONLY`` from a demoted primary,
  ``LOADING``, ``MASTERDOWN``, ``CLUSTERDOWN``, ``TRYAGAIN``, out of memory) opens the circuit
  breaker and drops the connection: the next attempt asks Sentinel or the cluster again where
  the primary is, so every worker follows a failover within one breaker interval;
- a redirection (``MOVED``, ``ASK``) is followed once, after refreshing the cluster's slot map;
  a second one is an outage, never an answer;
- any other error *answered* by Redis (a script or data error) fails that one decision and is
  logged at most once a minute per message; the breaker stays closed.

No command is retried after a timeout: an outage opens the breaker after one timeout.

Each connection learns its server's epoch (``run_id`` and ``master_replid``) when it connects.
Revocation marks are written under it (:mod:`apiauth.revocation`): marks replicated from a
primary that has since been replaced, or restored by a restarted server, are not trusted and are
loaded again from the database. When the server is another one than this process last spoke to,
the listeners of :data:`server_changed` run (the credential cache drops its copies).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import redis

from apiauth.conf import conf
from apiauth.store import base, lua
from apiauth.store import keys as names
from apiauth.store.base import (
    Call,
    Check,
    CircuitBreaker,
    ClaimTaken,
    MarkResult,
    MarksUnloaded,
    StaleCredential,
    StoreUnavailable,
    TokenRevoked,
)
from apiauth.store.connections import (
    OUTAGE,
    REDIRECT,
    Connections,
    StoreMisconfigured,
    _announce,
    _pack,
    is_cluster_client,
)
from apiauth.throttling import gcra
from apiauth.throttling.rates import Limit

logger = logging.getLogger("apiauth.store")

VERSION_TTL_MS = 86_400_000
"""A version token outlives every copy made with it (their TTL); Redis may still evict it
early, which only costs a refill."""

LOAD_FENCE_MS = 5_000
"""How long a load's fence stands if its worker dies before finishing (meanwhile the
lineage's requests ask the database)."""


def _argv(limits: Sequence[Limit], cost: int, debit: bool) -> list[Any]:
    argv: list[Any] = [cost, 1 if debit else 0]
    for limit in limits:
        if limit.kind == "bucket":
            argv += ["b", limit.capacity, limit.interval_us]
        else:
            argv += ["q", limit.capacity, limit.window_s]
    return argv


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A :class:`~apiauth.store.base.Call` as the limiter's script receives it."""

    sha: str
    source: str
    keys: list[Any]
    argv: list[Any]
    epoch_at: int
    """The index of ``argv`` to fill with the server's epoch, or -1."""
    packed: bytes | None
    """The whole ``EVALSHA`` in RESP, when nothing in it depends on the server (no epoch)."""


def _encode(call: Call) -> _Encoded:
    argv = _argv(call.limits, call.cost, call.debit)
    check = call.check
    if check is None:
        sha, source, keys, epoch_at = lua.SHA, lua.SCRIPT, list(call.keys), -1
    else:
        marks = check.marks if check.revocations else ()
        claim_ttl = check.claim_ttl_ms if check.claim else 0
        head: list[Any] = [check.token, len(marks), check.issued_at, claim_ttl]
        keys = [check.key]
        if marks:
            head += ["", *marks]  # the epoch, filled in on the way out
            keys.append(check.revocations)
        if claim_ttl:
            keys.append(check.claim)
        sha, source, epoch_at = lua.CHECKED_SHA, lua.CHECKED_SCRIPT, 4 if marks else -1
        keys += call.keys
        argv = [*head, *argv]
    packed = None if epoch_at >= 0 else _pack(["EVALSHA", sha, len(keys), *keys, *argv])
    return _Encoded(sha, source, keys, argv, epoch_at, packed)


def pack_for(connection: Any, parts: Sequence[Any], epoch_at: int = -1) -> bytes:
    """``parts`` encoded for ``connection``, with that server's epoch at ``epoch_at`` (after a
    redirect, another server's: see :meth:`RedisStore._connect`)."""
    if epoch_at >= 0:
        parts = [*parts]
        parts[epoch_at] = connection.apiauth_epoch
    return _pack(parts)


def _unconfirmed(status: int, check: Check | None) -> Exception:
    """What the checked script's negative status says could not be confirmed."""
    if status == -1:
        return StaleCredential(check.key if check else "")
    if status == -2:
        return TokenRevoked(check.key if check else "")
    if status == -3:
        return MarksUnloaded(check.lineage if check else "")
    if status == -4:
        return ClaimTaken(check.claim if check else "")
    return StoreUnavailable(f"the script answered {status}")  # pragma: no cover (never)


def _escape(pattern: str) -> str:
    for char in "\\*?[]":
        pattern = pattern.replace(char, "\\" + char)
    return pattern


class RedisStore:
    """The store in Redis, through a redis-py client: ``redis.Redis`` (one server, or a
    Sentinel-managed pool) or ``redis.cluster.RedisCluster``."""

    log_interval = 60.0

    def __init__(self, client: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        self._client = client
        self._factory = factory
        self.breaker = CircuitBreaker()
        self._logged: dict[str, float] = {}
        self.connections = Connections(lambda: self.client)
        self.down = False  # since the last outage, no command has succeeded

    @property
    def client(self) -> Any:
        if self._client is None:
            assert self._factory is not None
            self._client = self._factory()
        return self._client

    @property
    def is_cluster(self) -> bool:
        """Whether the client is a cluster client (``False`` until it is built)."""
        return self._client is not None and is_cluster_client(self._client)

    def _execute(
        self,
        key: str | None,
        parts: Sequence[Any],
        *,
        epoch_at: int = -1,
        packed: bytes | None = None,
    ) -> Any:
        """One command on the connection to ``key``'s server. ``epoch_at`` names an index of
        ``parts`` to fill with that server's epoch (see :meth:`_connect`); ``packed``: the
        command already encoded, in place of ``parts``."""
        if self.breaker.is_open:
            raise StoreUnavailable("circuit breaker open")
        for attempt in range(2):
            connection = None
            try:
                connection = self.connections.get(key)
                if self.down:
                    # Reached again: what was missed is written before this command runs.
                    self.down = False
                    _announce(base.recovered)
                command = packed or pack_for(connection, parts, epoch_at)
                connection.send_packed_command([command])
                return connection.read_response()
            except StoreMisconfigured as exc:
                self._failed(exc)
            except REDIRECT as exc:
                # The slot moved (a failover, a reshard): ask again where it lives, once.
                self.connections.refresh_slots()
                if attempt or isinstance(exc, redis.exceptions.AskError):
                    # ASK: the slot is migrating; its keys are on two nodes for a moment.
                    raise StoreUnavailable(f"redirected: {exc}") from exc
            except redis.exceptions.NoScriptError:
                raise
            except OUTAGE as exc:
                if connection is not None:
                    connection.disconnect()
                self._failed(exc)
            except redis.exceptions.ResponseError as exc:
                self._log_error(str(exc))  # a whole reply was read: the connection is fine
                raise StoreUnavailable(str(exc)) from exc
            except BaseException:
                if connection is not None:
                    connection.disconnect()  # perhaps mid-reply: reconnects on the next command
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _failed(self, exc: Exception) -> NoReturn:
        """An outage: open the breaker, forget where the cluster's slots were, and say so."""
        self.breaker.record_failure(conf.RATELIMIT_BREAKER_SECONDS)
        self.down = True
        if isinstance(exc, StoreMisconfigured):
            logger.error("%s", exc)
        if self.is_cluster:
            self.connections.refresh_slots()
        raise StoreUnavailable(str(exc) or type(exc).__name__) from exc

    def _log_error(self, message: str) -> None:
        now = self.breaker.clock()
        if now - self._logged.get(message, -self.log_interval) >= self.log_interval:
            if len(self._logged) > 1000:
                self._logged.clear()
            self._logged[message] = now
            logger.error("store error (breaker stays closed): %s", message)

    def _script(
        self,
        sha: str,
        source: str,
        keys: Sequence[str],
        argv: Sequence[Any],
        epoch_at: int = -1,
        *,
        packed: bytes | None = None,
    ) -> Any:
        """``EVALSHA``, and ``EVAL`` once after a restart; ``packed``: the ``EVALSHA`` already
        encoded (see :func:`_encode`)."""
        # argv's epoch_at, in the command: after the name, the script, the count and the keys.
        at = 3 + len(keys) + epoch_at if epoch_at >= 0 else -1
        try:
            if packed is not None:
                return self._execute(keys[0], (), packed=packed)
            return self._execute(keys[0], ["EVALSHA", sha, len(keys), *keys, *argv], epoch_at=at)
        except redis.exceptions.NoScriptError:
            # After a restart or SCRIPT FLUSH: EVAL runs and caches it, in the same trip.
            try:
                return self._execute(
                    keys[0], ["EVAL", source, len(keys), *keys, *argv], epoch_at=at
                )
            except redis.exceptions.NoScriptError as exc:  # pragma: no cover
                raise StoreUnavailable(str(exc)) from exc

    # -- the store's operations -----------------------------------------------------------

    def evaluate(
        self,
        keys: Sequence[str],
        limits: Sequence[Limit],
        cost: int,
        *,
        debit: bool = True,
        check: Check | None = None,
    ) -> gcra.Decision:
        return self.decide(Call(tuple(keys), tuple(limits), cost, debit, check))

    def decide(self, call: Call) -> gcra.Decision:
        encoded: _Encoded | None = call.encoded
        if encoded is None:
            encoded = _encode(call)
            if encoded.packed is not None:
                call.encoded = encoded  # the same bytes on every request of a worker's copy
        raw = self._script(
            encoded.sha,
            encoded.source,
            encoded.keys,
            encoded.argv,
            encoded.epoch_at,
            packed=encoded.packed,
        )
        result = list(map(int, raw.split()))
        status = result[0]
        if status < 0:
            raise _unconfirmed(status, call.check)
        # A plain loop: a comprehension over zip(range(…), …) cost twice as much, per request.
        state, states, at = gcra.LimitState, [], 1
        for limit in call.limits:
            states.append(state(limit, result[at], result[at + 1], result[at + 2]))
            at += 3
        return gcra.Decision(status == 1, tuple(states))

    def version(self, key: str, token: str) -> str:
        value = self._script(lua.VERSION_SHA, lua.VERSION_SCRIPT, [key], [token, VERSION_TTL_MS])
        return value.decode() if isinstance(value, bytes) else str(value)

    def claim(self, key: str, ttl_ms: int) -> bool:
        return self._execute(key, ["SET", key, b"1", "NX", "PX", ttl_ms]) is not None

    def delete(self, keys: Sequence[str]) -> int:
        # One command per key: keys of different lineages may live in different cluster slots.
        return sum(int(self._execute(key, ["DEL", key])) for key in keys)

    def reset(self, tag: str) -> int:
        """Delete the rate-limit keys under one hash tag (:func:`~apiauth.store.keys.
        is_limit_name`): never its version token nor its revocation marks."""
        # Every key of a tag lives on the server of its slot: scan that one.
        pattern = f"{_escape(tag)}*"
        doomed: list[str] = []
        cursor: Any = 0
        while True:
            cursor, found = self._execute(tag, ["SCAN", cursor, "MATCH", pattern, "COUNT", 1000])
            for raw in found:
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                if names.is_limit_name(key[len(tag) :].removeprefix(":")):
                    doomed.append(key)
            if int(cursor) == 0:
                break
        return self.delete(doomed)

    def mark(self, key: str, field: str, value: float, ttl_ms: int) -> str:
        written = self._script(
            lua.MARK_SHA,
            lua.MARK_SCRIPT,
            [key],
            ["", field, repr(float(value)), max(1, ttl_ms), secrets.token_hex(8)],
            epoch_at=0,
        )
        return MarkResult.WRITTEN if int(written) else MarkResult.UNLOADED

    def revoked(self, key: str, fields: Sequence[str], issued_at: float) -> bool | None:
        if not fields:
            return False
        found = int(
            self._script(
                lua.REVOKED_SHA, lua.REVOKED_SCRIPT, [key], ["", issued_at, *fields], epoch_at=0
            )
        )
        return None if found < 0 else bool(found)

    def load_marks(self, key: str, load: Callable[[], Mapping[str, float]], ttl_ms: int) -> bool:
        nonce = secrets.token_hex(8)
        fenced = int(
            self._script(
                lua.BEGIN_LOAD_SHA,
                lua.BEGIN_LOAD_SCRIPT,
                [key],
                ["", nonce, LOAD_FENCE_MS],
                epoch_at=0,
            )
        )
        if fenced == 0:
            return True  # another worker loaded them meanwhile
        if fenced == 2:
            return False  # another worker is loading them: the database answers meanwhile
        marks = load()  # after the fence: a revocation committed from now on spoils it
        flat: list[Any] = []
        for field, value in marks.items():
            flat += [field, repr(float(value))]
        done = self._script(
            lua.FINISH_LOAD_SHA,
            lua.FINISH_LOAD_SCRIPT,
            [key],
            ["", nonce, max(1, ttl_ms), *flat],
            epoch_at=0,
        )
        return bool(int(done))
