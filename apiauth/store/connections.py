"""This thread's connection to each Redis server, and what each server is (its epoch).

redis-py's pool would check a connection out and back in on every command, and connect it with
its retries (seconds of backoff in an outage): the store keeps one connection per thread and
server instead, made with the client's own connection class and options, so a Sentinel-managed
connection still asks the sentinels where the primary is whenever it connects.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from apiauth.store import base
from apiauth.store.base import StoreUnavailable

logger = logging.getLogger("apiauth.store")

OUTAGE = (
    redis.exceptions.ConnectionError,  # BusyLoadingError, MaxClientsReachedError included
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ClusterDownError,  # MasterDownError included
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.RedisClusterException,  # no node answered to build the slot map
)
"""Errors that say the server cannot serve now: the breaker opens."""

REDIRECT = (redis.exceptions.MovedError, redis.exceptions.AskError)


def _announce(listeners: list[Callable[[], object]]) -> None:
    for listener in list(listeners):
        try:
            listener()
        except Exception:  # a listener's failure must not fail the request that noticed
            logger.exception("store listener %r failed", listener)


class StoreMisconfigured(StoreUnavailable):
    """The client cannot serve this server (a cluster node reached without a cluster client)."""


_packed: dict[tuple[Any, ...], bytes] = {}
MAX_PACKED = 4096


def _pack(parts: Sequence[Any]) -> bytes:
    """A command in RESP, remembered: a worker's copy of a credential sends the same script
    call, with the same keys and arguments, on each of its requests, and encoding its twenty
    parts in Python costs more than looking them up. Parts that compare equal encode alike
    for every command the store sends (strings, bytes, and numbers the scripts read with
    ``tonumber``). Bounded: a full memo is emptied."""
    key = tuple(parts)
    packed = _packed.get(key)
    if packed is None:
        encoded = [part if isinstance(part, bytes) else str(part).encode() for part in parts]
        packed = b"*%d\r\n%s" % (
            len(encoded),
            b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in encoded),
        )
        if len(_packed) >= MAX_PACKED:
            _packed.clear()
        _packed[key] = packed
    return packed


_last_kind: tuple[Any, bool] = (None, False)


def is_cluster_client(client: Any) -> bool:
    """Whether ``client`` is a cluster client, remembered for the last client asked about.

    ``RedisCluster`` has a ``typing.Protocol`` metaclass, whose ``isinstance`` runs in Python
    (about 0.7 µs), and this is asked on every command, of the same client."""
    global _last_kind
    known = _last_kind
    if known[0] is not client:
        # One tuple, replaced whole: no thread pairs a client with another client's kind.
        known = _last_kind = (client, isinstance(client, redis.cluster.RedisCluster))
    return known[1]


class _Holder:
    """Lives in a thread's locals; its finalizer returns the thread's connections."""


def _readable(connection: Any, sock: socket.socket) -> bool:
    """Whether an idle connection has something to read: the server closed it (EOF), or a
    reply nobody read. Either way it must not carry the next command. The poller is made
    once per socket (one thread uses a connection): asking costs one ``poll`` call."""
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([sock], [], [], 0)[0])
    polled = getattr(connection, "apiauth_polled", None)
    if polled is None or polled[0] is not sock:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        polled = connection.apiauth_polled = (sock, poller)
    return bool(polled[1].poll(0))


def _info_field(info: Any, name: str) -> str:
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.partition(":")[2].strip()
    return ""


class Connections:
    """The connections of one :class:`~apiauth.store.redis.RedisStore`: per thread and server,
    each knowing its server's epoch (``run_id:master_replid``)."""

    def __init__(self, client: Callable[[], Any]) -> None:
        self._client = client
        self._pinned = threading.local()
        self._servers: dict[str, str] = {}  # server (a cluster node's name) → its epoch

    @property
    def is_cluster(self) -> bool:
        return is_cluster_client(self._client())

    def pool_for(self, key: str | None) -> tuple[str, Any]:
        client = self._client()
        if is_cluster_client(client):
            slot = client.keyslot(key or "")
            node = client.nodes_manager.get_node_from_slot(slot)
            return node.name, client.get_redis_connection(node).connection_pool
        return "", client.connection_pool

    def get(self, key: str | None) -> Any:
        """This thread's connection to the server that serves ``key``.

        Made once per thread and server with the client's connection class and options, and
        kept: checking one out of redis-py's pool and back in on every request costs about as
        much as the command, and the pool would connect it with redis-py's retries (seconds
        of backoff in an outage). Closed when the thread ends, replaced after a fork; one the
        server closed while idle is reconnected (one ``poll``).
        """
        pinned = self._pinned
        # The pid, not an at-fork hook: servers that fork in C (uWSGI's prefork by default)
        # run no Python hook, and a child must never write on its parent's sockets.
        if getattr(pinned, "pid", None) != os.getpid():
            pinned.connections, pinned.pid = {}, os.getpid()
        node, pool = self.pool_for(key)
        connection = pinned.connections.get(node)
        if connection is None or connection.apiauth_pool is not pool:
            if connection is not None:
                connection.disconnect()  # its server's pool was replaced (a new slot map)
            connection = pool.connection_class(**pool.connection_kwargs)
            # One attempt: an outage must cost one timeout, then the breaker decides.
            connection.retry = Retry(NoBackoff(), 0)
            connection.apiauth_pool, connection.apiauth_epoch = pool, None
            pinned.connections[node] = connection
            # The thread's locals die with it, and the connection is closed then.
            pinned.holder = holder = getattr(pinned, "holder", None) or _Holder()
            weakref.finalize(holder, connection.disconnect)
        sock = getattr(connection, "_sock", None)
        if sock is not None and _readable(connection, sock):
            connection.disconnect()  # closed by the server, or a stray reply
        if getattr(connection, "_sock", None) is None or connection.apiauth_epoch is None:
            self.connect(connection, node)
        return connection

    def connect(self, connection: Any, node: str) -> None:
        """Connect through ``connect()`` (for a Sentinel-managed connection, the step that asks
        the sentinels where the primary is now) and learn which server this is.

        The server's epoch is its ``run_id`` and ``master_replid``: a restart changes the
        first, every promotion the second, so marks written before a failover (or a failback
        to a former primary) are never read as this server's."""
        connection.apiauth_epoch = None
        if getattr(connection, "_sock", None) is None:
            connection.connect()
        try:
            server = self._info(connection, "server")
            replication = self._info(connection, "replication")
            cluster = self._info(connection, "cluster")
        except redis.exceptions.ResponseError as exc:  # NOPERM: an ACL without INFO
            connection.disconnect()
            raise StoreMisconfigured(
                f"the store needs the INFO command (grant +info to its Redis user): {exc}"
            ) from exc
        if _info_field(cluster, "cluster_enabled") == "1" and not self.is_cluster:
            connection.disconnect()
            raise StoreMisconfigured(
                "the store is a Redis Cluster node but the client is not a cluster client: "
                "set APIAUTH['REDIS_URL'] to a redis+cluster:// URL (docs/deployment.md)"
            )
        epoch = f"{_info_field(server, 'run_id')}:{_info_field(replication, 'master_replid')}"
        previous = self._servers.get(node)
        self._servers[node] = epoch
        connection.apiauth_epoch = epoch
        if previous is not None and previous != epoch:
            _announce(base.server_changed)

    @staticmethod
    def _info(connection: Any, section: str) -> Any:
        connection.send_command("INFO", section)
        return connection.read_response()

    def refresh_slots(self) -> None:
        client = self._client()
        if is_cluster_client(client):
            try:
                client.nodes_manager.initialize()
            except redis.exceptions.RedisError as exc:
                logger.warning("could not refresh the cluster's slot map: %s", exc)
