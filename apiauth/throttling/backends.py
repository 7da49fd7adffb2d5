"""Where bucket state lives: Redis (shared, atomic) or this process (``make run`` without Redis).

Both run the maths of :mod:`apiauth.throttling.gcra`: Redis through the Lua script in one
round trip, the local backend in Python under a lock.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from django.core.cache import caches

from apiauth.conf import conf
from apiauth.throttling import gcra, lua
from apiauth.throttling.rates import Limit

logger = logging.getLogger("apiauth.throttling")


class BackendUnavailable(Exception):
    """The store could not decide: unreachable, breaker open, or an error in the script."""


class StaleCredential(Exception):
    """The cached credential's version token has changed: re-read it before deciding."""


class TokenRevoked(Exception):
    """A revocation mark covers the token being checked (:mod:`apiauth.revocation`)."""


VERSION_TTL_MS = 86_400_000
"""A token outlives every copy made with it (their TTL); Redis may still evict it early, which
only costs a refill."""


def _argv(limits: Sequence[Limit], cost: int, debit: bool) -> list[Any]:
    argv: list[Any] = [cost, 1 if debit else 0]
    for limit in limits:
        if limit.kind == "bucket":
            argv += ["b", limit.capacity, limit.interval_us]
        else:
            argv += ["q", limit.capacity, limit.window_s]
    return argv


class CircuitBreaker:
    """After a failure, skip the store for ``cooldown`` seconds instead of paying a timeout on
    every request; the first call after that tries again (and closes the breaker on success)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.open_until = 0.0
        self.failures = 0

    @property
    def is_open(self) -> bool:
        return self.clock() < self.open_until

    def record_failure(self, cooldown: float) -> None:
        self.failures += 1
        self.open_until = self.clock() + cooldown

    def record_success(self) -> None:
        self.open_until = 0.0


class RedisBackend:
    """Bucket state in Redis, reached through django-redis's connection for a cache alias.

    Only a server that cannot serve (connection errors, timeouts, and the answers of a server
    that is failing over, loading or out of memory) opens the circuit breaker. Any other error
    *answered* by Redis (a script or data error) says nothing about the next request: it fails
    that one decision (the failure mode applies to it) and is logged, at most once a minute per
    message, and other requests keep their limits.
    """

    log_interval = 60.0

    def __init__(self, alias: str, client: Any = None) -> None:
        self.alias = alias
        self._client = client
        self.breaker = CircuitBreaker()
        self._logged: dict[str, float] = {}
        self._pinned = threading.local()

    @property
    def client(self) -> Any:
        if self._client is None:
            from django_redis import get_redis_connection

            self._client = get_redis_connection(self.alias)
        return self._client

    def _call(self, command: Callable[[], Any]) -> Any:
        import redis

        if self.breaker.is_open:
            raise BackendUnavailable("circuit breaker open")
        outage = (
            redis.exceptions.ConnectionError,  # BusyLoadingError included
            redis.exceptions.TimeoutError,
            redis.exceptions.ReadOnlyError,
            redis.exceptions.OutOfMemoryError,
        )
        try:
            result = command()
        except outage as exc:
            self.breaker.record_failure(conf.RATELIMIT_BREAKER_SECONDS)
            raise BackendUnavailable(str(exc)) from exc
        except redis.exceptions.RedisError as exc:
            self._log_error(str(exc))
            raise BackendUnavailable(str(exc)) from exc
        self.breaker.record_success()
        return result

    def _log_error(self, message: str) -> None:
        now = self.breaker.clock()
        if now - self._logged.get(message, -self.log_interval) >= self.log_interval:
            if len(self._logged) > 1000:
                self._logged.clear()
            self._logged[message] = now
            logger.error("rate-limit store error (breaker stays closed): %s", message)

    def _script(self, sha: str, source: str, keys: Sequence[str], argv: Sequence[Any]) -> Any:
        import redis

        def script() -> Any:
            try:
                return self._evalsha(sha, keys, argv)
            except redis.exceptions.NoScriptError:
                # After a restart or SCRIPT FLUSH: EVAL runs and caches it, in the same trip.
                return self.client.eval(source, len(keys), *keys, *argv)

        return self._call(script)

    def _evalsha(self, sha: str, keys: Sequence[str], argv: Sequence[Any]) -> Any:
        parts = [b"EVALSHA", sha.encode(), b"%d" % len(keys)]
        parts += [key.encode() for key in keys]
        parts += [value if isinstance(value, bytes) else str(value).encode() for value in argv]
        return self._command(parts, lambda: self.client.evalsha(sha, len(keys), *keys, *argv))

    def _command(self, parts: list[bytes], routed: Callable[[], Any]) -> Any:
        """One command on this thread's connection, encoded here: redis-py's generic
        encoding, retries, response callbacks and pool bookkeeping cost more than the command
        on the hot path. ``routed`` runs it through the client instead, for a cluster client,
        which picks a node for each command itself.

        No retry: an outage must open the breaker after one timeout, not three.
        """
        packed = b"*%d\r\n%s" % (
            len(parts),
            b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts),
        )
        import redis

        connection = self._connection()
        if connection is None:
            return routed()
        try:
            connection.send_packed_command([packed])
            return connection.read_response()
        except redis.exceptions.ResponseError:
            raise  # a whole reply was read: the connection is fine
        except BaseException:
            connection.disconnect()  # perhaps mid-reply: reconnects on the next command
            raise

    def _connection(self) -> Any:
        """This thread's connection for the limiter, taken from the client's pool once.

        Checking a connection out of redis-py's pool and back in on every request costs about
        as much as the script's round trip. So each thread keeps one: it goes back to the pool
        when the thread ends, is replaced after a fork, and is reconnected when the server
        closed it while idle (the check the pool would make, as one ``poll``).
        """
        pinned = self._pinned
        connection = getattr(pinned, "connection", None)
        if connection is not None and pinned.pid == os.getpid():
            sock = getattr(connection, "_sock", None)
            if sock is not None and _readable(sock):
                connection.disconnect()  # closed by the server, or a stray reply
            return connection
        pool = getattr(self.client, "connection_pool", None)
        if pool is None:
            return None
        connection = pool.get_connection()
        pinned.connection, pinned.pid = connection, os.getpid()
        # The thread's locals die with it: the connection then returns to the pool.
        pinned.holder = _Holder()
        weakref.finalize(pinned.holder, pool.release, connection)
        return connection

    def _run(self, keys: Sequence[str], argv: Sequence[Any]) -> list[int]:
        return [int(value) for value in self._script(lua.SHA, lua.SCRIPT, keys, argv).split()]

    def evaluate(
        self,
        keys: Sequence[str],
        limits: Sequence[Limit],
        cost: int,
        *,
        debit: bool = True,
        check: Any = None,
    ) -> gcra.Decision:
        """Decide ``limits``; with a ``check`` (:class:`apiauth.cache.Check`), only if its
        token still stands, else :class:`StaleCredential` and no bucket is touched."""
        argv = _argv(limits, cost, debit)
        if check is None:
            result = self._run(keys, argv)
        else:
            raw = self._script(
                lua.CHECKED_SHA,
                lua.CHECKED_SCRIPT,
                [check.key, *check.marks, *keys],
                [check.token, len(check.marks), check.issued_at, *argv],
            )
            result = [int(value) for value in raw.split()]
            if result[0] == -1:
                raise StaleCredential(check.key)
            if result[0] == -2:
                raise TokenRevoked(check.key)
        states = tuple(
            gcra.LimitState(limit, *result[1 + i * 3 : 4 + i * 3]) for i, limit in enumerate(limits)
        )
        return gcra.Decision(bool(result[0]), states)

    def version(self, key: str, token: str) -> str:
        """The version token at ``key``, set to ``token`` if there is none."""
        value = self._script(lua.VERSION_SHA, lua.VERSION_SCRIPT, [key], [token, VERSION_TTL_MS])
        return value.decode() if isinstance(value, bytes) else str(value)

    def claim(self, key: str, ttl_ms: int) -> bool:
        """``SET key NX PX ttl``: whether this call was the first to claim ``key``."""
        parts = [b"SET", key.encode(), b"1", b"NX", b"PX", b"%d" % ttl_ms]

        def routed() -> Any:
            return self.client.set(key, b"1", nx=True, px=ttl_ms)

        return self._call(lambda: self._command(parts, routed)) is not None

    def mark(self, key: str, value: float, ttl_ms: int) -> None:
        """Set a revocation mark (a time; tokens issued at or before it are revoked)."""
        self._call(lambda: self.client.set(key, str(value).encode(), px=max(1, ttl_ms)))

    def revoked(self, marks: Sequence[str], issued_at: float) -> bool:
        """Whether a mark covers a token issued at ``issued_at`` (outside a decision)."""
        values = self._call(lambda: self.client.mget(list(marks))) if marks else []
        return any(value is not None and float(value) >= issued_at for value in values)

    def delete(self, keys: Sequence[str]) -> int:
        # One command per key: keys of different lineages may live in different cluster slots.
        def delete() -> int:
            with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.delete(key)
                return sum(int(n) for n in pipe.execute())

        return int(self._call(delete))

    def reset(self, tag: str) -> int:
        """Delete every key of one identity (they share the hash tag)."""

        def delete() -> int:
            keys = list(self.client.scan_iter(match=f"{_escape(tag)}*", count=1000))
            return int(self.client.delete(*keys)) if keys else 0

        return int(self._call(delete))


class _Holder:
    """Lives in a thread's locals; its finalizer returns the thread's connection."""


def _readable(sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (EOF), or a
    reply nobody read. Either way it must not carry the next command."""
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([sock], [], [], 0)[0])
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _escape(pattern: str) -> str:
    for char in "\\*?[]":
        pattern = pattern.replace(char, "\\" + char)
    return pattern


class LocalBackend:
    """The same maths in this process: for development without Redis. Not shared between
    processes, so N workers admit up to N times the limit (system check ``apiauth.W005``)."""

    max_entries = 100_000

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.clock = clock or (lambda: time.time_ns() // 1000)
        self.lock = threading.Lock()
        self.store: dict[str, tuple[gcra.Value, int]] = {}  # key → (value, expires at µs)
        self.claims: dict[str, int] = {}  # key → expires at µs
        self.marks: dict[str, tuple[float, int]] = {}  # key → (mark, expires at µs)

    def evaluate(
        self,
        keys: Sequence[str],
        limits: Sequence[Limit],
        cost: int,
        *,
        debit: bool = True,
        check: Any = None,
    ) -> gcra.Decision:
        # Credentials are never cached without Redis (apiauth.cache): a check here carries
        # revocation marks only.
        with self.lock:
            now = self.clock()
            if check is not None and self._revoked(check.marks, check.issued_at, now):
                raise TokenRevoked(check.key)
            current = {
                key: entry[0]
                for key in keys
                if (entry := self.store.get(key)) is not None and entry[1] > now
            }
            decision, updates = gcra.evaluate(current, keys, limits, cost, now, debit=debit)
            for key, limit in zip(keys, limits, strict=True):
                if key in updates:
                    expires = now + gcra.expiry_ms(limit, updates[key], now) * 1000
                    self.store[key] = (updates[key], expires)
            if len(self.store) > self.max_entries:
                self.store = {k: v for k, v in self.store.items() if v[1] > now}
            return decision

    def claim(self, key: str, ttl_ms: int) -> bool:
        with self.lock:
            now = self.clock()
            held = self.claims.get(key)
            if held is not None and held > now:
                return False
            if len(self.claims) > self.max_entries:
                self.claims = {k: v for k, v in self.claims.items() if v > now}
            self.claims[key] = now + ttl_ms * 1000
            return True

    def mark(self, key: str, value: float, ttl_ms: int) -> None:
        with self.lock:
            now = self.clock()
            if len(self.marks) > self.max_entries:
                self.marks = {k: v for k, v in self.marks.items() if v[1] > now}
            self.marks[key] = (value, now + max(1, ttl_ms) * 1000)

    def revoked(self, marks: Sequence[str], issued_at: float) -> bool:
        with self.lock:
            return self._revoked(marks, issued_at, self.clock())

    def _revoked(self, marks: Sequence[str], issued_at: float, now: int) -> bool:
        for key in marks:
            held = self.marks.get(key)
            if held is not None and held[1] > now and held[0] >= issued_at:
                return True
        return False

    def reset(self, tag: str) -> int:
        with self.lock:
            doomed = [key for key in self.store if key.startswith(tag)]
            for key in doomed:
                del self.store[key]
            return len(doomed)


Backend = RedisBackend | LocalBackend

_backends: dict[tuple[str, str], Backend] = {}
_lock = threading.Lock()


def uses_redis(alias: str) -> bool:
    backend = str(caches[alias].__class__.__module__)
    return backend.startswith("django_redis")


def get_backend() -> Backend:
    """The configured backend, one instance per (kind, alias) and process."""
    setting, alias = conf.RATELIMIT_BACKEND, conf.RATELIMIT_CACHE
    backend = _backends.get((setting, alias))
    if backend is not None:
        return backend
    kind = setting if setting != "auto" else ("redis" if uses_redis(alias) else "local")
    with _lock:
        backend = _backends.get((kind, alias)) or (
            RedisBackend(alias) if kind == "redis" else LocalBackend()
        )
        _backends[(kind, alias)] = _backends[(setting, alias)] = backend
        return backend


def reset_backends() -> None:
    """Forget backend instances (tests; after changing cache settings)."""
    with _lock:
        _backends.clear()
