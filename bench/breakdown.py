"""Where the demo's ``GET /v1/ping`` spends its CPU, step by step, against the DRF floor.

One process, the demo's own settings (``bench/sites/breakdown.py``), every request handed to
Django's WSGI handler; each step of the demo's request is a view of its own, served at
``/v1/ping`` from its own URLconf (``bench/sites/breakdown_urls.py``): a bare DRF view, the
same with one ``EVALSHA``, the least DRF stack that makes no query (the DRF floor's classes
with the key found in a dict), the DRF floor, our API key alone, with our throttle, with the
demo's permissions, and the whole demo view. Rounds are interleaved, so the machine's drift
hurts every step alike; the figure is the median over rounds of CPU per request, this
process's plus redis-server's (read from ``/proc``).

The steps bound what any change in apiauth can reach: a request of ours makes at least the
bare view's work and one round trip, and any DRF stack that makes no query at least the
no-query floor's, so the DRF floor's cost over those is the best floor/ours the benchmark
could show with nothing of ours left. ``python -m bench breakdown`` runs it on SQLite, or on
the database ``DATABASE_URL`` names.
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import print_table
from bench.e2e import DEMO_ENV, _cpu_of, _machine, _redis_pid

ROOT = Path(__file__).resolve().parent.parent
KEYS = 64
STEPS = [
    ("bare", "demo", "a bare DRF view: no authentication, permission, throttle"),
    ("round trip", "demo", "the bare view and one EVALSHA (django-redis)"),
    ("own trip", "demo", "the bare view and one EVALSHA (apiauth's thread connection)"),
    ("no-query floor", "demo", "the DRF floor's classes, the key in a dict, EVALSHA on ours"),
    ("DRF floor", "demo", "the DRF floor: one SQL lookup, one EVALSHA"),
    ("key", "demo", "APIKeyAuthentication alone (its copy confirmed: 1 trip)"),
    ("throttled", "demo", "the key and TokenBucketThrottle (1 trip), the bare answer"),
    ("scoped", "demo", "... and HasScopes, IsAuthenticated"),
    ("ours", "demo", "the demo's /v1/ping: ... its view and URLconf"),
    ("bare", "standard", "a bare DRF view"),
    ("DRF floor", "standard", "the DRF floor"),
    ("ours", "standard", "the demo's /v1/ping"),
]


TRIPS = {
    "redis": "",
    "replayed": "apiauth's store answers each command with its first reply, from memory: no "
    "round trip on our connection (django-redis's, the DRF floor's, stays real)",
    "polled": "apiauth's store polls its socket for the reply instead of sleeping in recv",
    "polluted": "replayed, and 256 KB copied in place of each round trip: the caches disturbed, "
    "no system call",
}
"""How the round trips on apiauth's connection are made (``--trip``). The experiments take
the round trip, its sleep, or all of it but its effect on the caches out of our steps and the
no-query floor alike, to show what our code costs without it; the DRF floor's ratios mean
nothing then."""


def run(n: int = 1000, rounds: int = 7, trip: str = "redis") -> None:
    """Measure in a process of its own: the demo's settings, not the other benchmarks'."""
    with tempfile.TemporaryDirectory(prefix="apiauth-breakdown-") as tmp:
        subprocess.run(
            [sys.executable, "-W", "ignore", "-m", "bench.breakdown", str(n), str(rounds), trip],
            cwd=ROOT,
            env=site_env(tmp),
            check=True,
        )


def site_env(tmp: str) -> dict[str, str]:
    """The environment of a process serving the steps: the demo's settings, its database in
    ``tmp`` unless ``DATABASE_URL`` names one."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.sites.breakdown",
        "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/db.sqlite3",
        **DEMO_ENV,
        "STATIC_ROOT": tmp,
    }


def site(count: int = KEYS) -> tuple[list[str], dict[str, Any]]:
    """Migrate, issue ``count`` keys, and build the WSGI handlers: the demo's middleware, and
    Django's standard list (after the middleware that picks each step's URLconf)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.management import call_command
    from django.test import override_settings

    from apiauth.models import APIKey
    from bench.sites.base import MIDDLEWARE as STANDARD

    call_command("migrate", verbosity=0, interactive=False)
    owner, _ = get_user_model()._default_manager.get_or_create(username="breakdown")
    keys = [
        APIKey.objects.create_key(name=f"breakdown-{i}", owner=owner, plan="enterprise")[1]
        for i in range(count)
    ]
    handlers = {"demo": WSGIHandler()}
    with override_settings(MIDDLEWARE=[settings.MIDDLEWARE[0], *STANDARD]):
        handlers["standard"] = WSGIHandler()
    return keys, handlers


def serve(handler: Any, step: str, keys: list[str], count: int) -> None:
    """``count`` requests of ``step``, the keys in turn; each must be answered 200."""
    status: list[str] = []

    def start_response(code: str, headers: Any, exc_info: Any = None) -> Any:
        status.append(code)

    for i in range(count):
        body = handler(_environ(step, keys[i % len(keys)]), start_response)
        b"".join(body)
        body.close()
        if not status.pop().startswith("200"):
            raise SystemExit(f"{step}: not answered 200")


def measure(n: int, rounds: int, trip: str = "redis") -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    keys, handlers = site()
    store_pid = _redis_pid(settings.REDIS_URL)  # None elsewhere: its CPU is not counted
    if trip != "redis":
        _experiment(trip)

    def requests(middleware: str, step: str, count: int) -> None:
        serve(handlers[middleware], step, keys, count)

    for name, middleware, _ in STEPS:
        requests(middleware, name, 200)  # imports, connections, compiled lookups
    server: dict[int, list[float]] = {i: [] for i in range(len(STEPS))}
    store_us: dict[int, list[float]] = {i: [] for i in range(len(STEPS))}
    scripts_us: dict[int, list[float]] = {i: [] for i in range(len(STEPS))}
    for _ in range(rounds):
        for i, (name, middleware, _) in enumerate(STEPS):
            in_scripts = _script_seconds()  # read outside the timed span
            cpu, at_store = time.process_time(), _cpu_of(store_pid)
            requests(middleware, name, n)
            server[i].append((time.process_time() - cpu) / n * 1e6)
            store_us[i].append((_cpu_of(store_pid) - at_store) / n * 1e6)
            scripts_us[i].append((_script_seconds() - in_scripts) / n * 1e6)
    total = {
        (name, middleware): statistics.median(
            a + b for a, b in zip(server[i], store_us[i], strict=True)
        )
        for i, (name, middleware, _) in enumerate(STEPS)
    }
    print(
        f"\nIn process: each step of GET /v1/ping, {rounds} interleaved rounds × {n} requests, "
        f"{KEYS} keys, {connection.vendor}, {_machine()}"
    )
    print_table(
        [
            "step",
            "middleware",
            "server CPU µs/req",
            "redis-server µs/req",
            "of which scripts",
            "server + store",
        ],
        [
            [
                f"{name}: {what}",
                middleware,
                f"{statistics.median(server[i]):.0f}",
                f"{statistics.median(store_us[i]):.0f}",
                f"{statistics.median(scripts_us[i]):.1f}",
                f"{total[name, middleware]:.0f}",
            ]
            for i, (name, middleware, what) in enumerate(STEPS)
        ],
    )
    if trip != "redis":
        print(f"\nTrip {trip}: {TRIPS[trip]}.")
    bare = total["bare", "demo"]
    trip_us = total["round trip", "demo"] - bare
    own_trip = total["own trip", "demo"] - bare
    no_query = total["no-query floor", "demo"]
    print(
        f"\nWhat each adds (µs, demo's middleware): one EVALSHA round trip {trip_us:.0f} through "
        f"django-redis, {own_trip:.0f} on apiauth's connection; a DRF authentication and "
        f"throttle around it, the key in a dict {no_query - total['own trip', 'demo']:.0f}; "
        f"the floor's lookup {total['DRF floor', 'demo'] - bare - trip_us:.0f}; "
        f"our key, confirmed {total['key', 'demo'] - bare:.0f}; "
        f"our key and throttle over the no-query floor "
        f"{total['throttled', 'demo'] - no_query:.0f}; "
        f"the permissions {total['scoped', 'demo'] - total['throttled', 'demo']:.0f}; "
        f"the demo's view and URLconf {total['ours', 'demo'] - total['scoped', 'demo']:.0f}; "
        f"the demo's four extra middleware (two of them apiauth's), on ours "
        f"{total['ours', 'demo'] - total['ours', 'standard']:.0f}"
    )
    floor = total["DRF floor", "demo"]
    print(
        f"DRF floor/ours: {floor / total['ours', 'demo']:.2f} (both on the demo's middleware, as "
        f"bench e2e judges it), {total['DRF floor', 'standard'] / total['ours', 'demo']:.2f} "
        "(the floor on Django's middleware). The best any change could reach: nothing of ours "
        f"left but the bare view and one round trip on our connection, "
        f"{floor / total['own trip', 'demo']:.2f}; a DRF stack that makes no query and checks "
        f"nothing, {floor / no_query:.2f}. For 1.2 ours must cost {floor / 1.2:.0f} µs, "
        f"{floor / 1.2 - no_query:.0f} over the no-query floor (today "
        f"{total['ours', 'demo'] - no_query:.0f})."
    )


POLLUTION = 256 * 1024
"""Bytes ``--trip polluted`` copies per round trip: about a core's L2 cache."""


def _script_seconds() -> float:
    """The time redis-server has spent running scripts (``INFO commandstats``): finer than
    its CPU from ``/proc``, which counts in clock ticks."""
    from django_redis import get_redis_connection

    stats = get_redis_connection("default").info("commandstats")
    usec = sum(stats.get(f"cmdstat_{name}", {}).get("usec", 0) for name in ("evalsha", "eval"))
    return float(usec) / 1e6


def _experiment(trip: str) -> None:
    """Make the round trips on apiauth's connection the ``trip`` experiment's way."""
    import select

    from apiauth.store import get_store
    from apiauth.store.redis import RedisStore, pack_for

    store = get_store()
    assert isinstance(store, RedisStore)  # the demo's store
    real = store._execute
    replies: dict[tuple[Any, ...], Any] = {}
    source, scratch = bytearray(POLLUTION), bytearray(POLLUTION)

    def replayed(
        key: str | None, parts: Any, *, epoch_at: int = -1, packed: bytes | None = None
    ) -> Any:
        # A script, with or without limits (a kept call comes encoded).
        command = (parts[0], parts[1], len(parts)) if packed is None else (len(packed),)
        if command not in replies:
            replies[command] = real(key, parts, epoch_at=epoch_at, packed=packed)
        if trip == "polluted":
            scratch[:] = source
        return replies[command]

    def polled(
        key: str | None, parts: Any, *, epoch_at: int = -1, packed: bytes | None = None
    ) -> Any:
        connection = store.connections.get(key)
        connection.send_packed_command([packed or pack_for(connection, parts, epoch_at)])
        poller = select.poll()
        poller.register(connection._sock, select.POLLIN)
        while not poller.poll(0):
            pass
        return connection.read_response()

    store._execute = polled if trip == "polled" else replayed  # type: ignore[method-assign]


def _environ(step: str, key: str) -> dict[str, Any]:
    from bench.sites.breakdown_urls import STEP_KEY

    return {
        STEP_KEY: step,
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/ping",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8000",
        "HTTP_X_API_KEY": key,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }


if __name__ == "__main__":
    measure(int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:4])
