"""The redis-py client the store talks through, built from ``APIAUTH["REDIS_URL"]``.

- ``redis://[[user]:password@]host:port/db`` (``rediss://`` for TLS, ``unix://`` for a socket):
  one server;
- ``redis+sentinel://[[user]:password@]host:port,host:port/service[/db]``: the primary that
  the sentinels name (``rediss+sentinel://`` for TLS to the servers);
- ``redis+cluster://[[user]:password@]host:port,host:port`` (``rediss+cluster://``): a Redis
  Cluster, through ``redis.cluster.RedisCluster`` (django-redis has no cluster client).

Without ``REDIS_URL`` the store uses the client of the django-redis cache
``RATELIMIT_CACHE``: one server, or Sentinel through django-redis's own Sentinel support.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

DEFAULT_OPTIONS: dict[str, Any] = {
    # An outage must cost one short timeout, then the circuit breaker decides.
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}

SCHEMES = ("redis", "rediss", "unix")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")


class InvalidRedisURL(ValueError):
    pass


def topology(url: str) -> str:
    """``"server"``, ``"sentinel"`` or ``"cluster"``; :class:`InvalidRedisURL` otherwise."""
    scheme = url.partition("://")[0].lower()
    if "://" not in url:
        raise InvalidRedisURL(f"{url!r} is not a URL")
    if scheme in SCHEMES:
        return "server"
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    raise InvalidRedisURL(
        f"unknown scheme {scheme!r}: use redis://, rediss://, unix://, redis+sentinel:// "
        "or redis+cluster://"
    )


def _hosts(netloc: str) -> tuple[dict[str, Any], list[tuple[str, int]]]:
    credentials: dict[str, Any] = {}
    userinfo, at, hosts = netloc.rpartition("@")
    if at:
        user, _colon, password = userinfo.partition(":")
        if user:
            credentials["username"] = unquote(user)
        if password:
            credentials["password"] = unquote(password)
    found: list[tuple[str, int]] = []
    for part in hosts.split(","):
        host, _colon, port = part.strip().rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not host or not port.isdigit():
            raise InvalidRedisURL(f"{part!r} is not host:port")
        found.append((host, int(port)))
    return credentials, found


def validate(url: str) -> None:
    """Raise :class:`InvalidRedisURL` for a URL :func:`build_client` cannot use (without
    connecting anywhere)."""
    kind = topology(url)
    if kind == "server":
        try:
            redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
        except ValueError as exc:
            raise InvalidRedisURL(str(exc)) from None
        return
    split = urlsplit(url)
    _hosts(split.netloc)
    if kind == "sentinel":
        _service(split.path)


def _service(path: str) -> tuple[str, int]:
    parts = [unquote(part) for part in path.split("/") if part]
    if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise InvalidRedisURL("a Sentinel URL ends in /service_name or /service_name/db")
    return parts[0], int(parts[1]) if len(parts) == 2 else 0


def build_client(url: str, options: dict[str, Any] | None = None) -> Any:
    """A redis-py client for ``url`` (see the module's docstring), with ``options`` over
    :data:`DEFAULT_OPTIONS` passed to every connection it makes. A cluster client connects at
    once, to learn the slots."""
    validate(url)
    kind = topology(url)
    merged = {**DEFAULT_OPTIONS, **(options or {})}
    if kind == "server":
        return redis.Redis.from_url(url, **merged)
    split = urlsplit(url)
    tls = split.scheme.lower().startswith("rediss")
    credentials, hosts = _hosts(split.netloc)
    if kind == "cluster":
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in hosts],  # type: ignore[no-untyped-call]
            ssl=tls,
            **credentials,
            **merged,
        )
    service, db = _service(split.path)
    sentinel_options = merged.pop("sentinel_kwargs", None) or {
        key: value for key, value in merged.items() if key.startswith("socket_")
    }
    sentinel = Sentinel(hosts, sentinel_kwargs=sentinel_options, **merged)
    return sentinel.master_for(service, db=db, ssl=tls, **credentials)
