"""``python -m tests.race``: revoke credentials while other processes keep filling their copies.

Run by ``tests/test_cache_race.py`` with ``RACE_DATABASE_URL`` (a database of its own),
``REDIS_URL`` and ``DJANGO_SETTINGS_MODULE=tests.race``. Worker processes request ``/v1/ping``
(confirmed by the throttle's script) and ``/v1/whoami`` (confirmed by the authentication class)
with every key over and over, dropping their copies often so fills keep happening, and with a
pause between the two reads of a fill, where a revocation can fall. The coordinator revokes the
keys one by one. A request that *started* after a revocation *returned* and still got a 200 is a
resurrection; the script prints a JSON summary and exits 1 if it saw any.

``RACE_PLANT=1`` swaps the fill's two reads (row first, then token): the bug the design rules
out. The test expects this script to catch it.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import sys
import time
from typing import Any

import dj_database_url

from tests.settings import *  # noqa: F403

DATABASES = {  # noqa: F405
    "default": dict(dj_database_url.parse(os.environ.get("RACE_DATABASE_URL", "sqlite://")))
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {"timeout": 30}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": os.environ.get("REDIS_URL", ""),
    }
}
APIAUTH = {
    "FAILED_AUTH_LIMITS": None,
    "PLANS": {"race": {"rate": "100000/min", "burst": 100000}},
    "DEFAULT_PLAN": "race",
    "CREDENTIAL_CACHE_TTL": 5.0,
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "CRITICAL"}}  # type: ignore[dict-item]

KEYS = 8
WORKERS = 8


def plant_bug() -> None:
    """The wrong order: the row read before the token."""
    from apiauth.cache import Check, CredentialCache, Entry, redis_backend, version_key

    def fill(self: Any, value: str) -> Any:
        backend = redis_backend()
        assert backend is not None
        obj = self.lookup(value)
        if obj is None:
            return None
        pause()
        key = version_key(self.lineage(obj))
        token = backend.version(key, os.urandom(8).hex())
        entry = Entry(obj, Check(key, token), self.clock() + 5.0)
        self.store(value, entry)
        return entry

    CredentialCache.fill = fill  # type: ignore[method-assign]


def pause() -> None:
    time.sleep(random.uniform(0, 0.05))


BEFORE = 10
"""Requests admitted for a key before the coordinator revokes it."""
AFTER = 10
"""Requests started after its revocation that the coordinator waits for, per key."""
LIMIT = 60.0
"""A bound on the whole run, for a machine that cannot make progress at all."""


class Shared:
    """What the coordinator and the workers share: counts, not time windows, decide when the
    race has happened on both sides of every revocation, however slow the machine."""

    def __init__(self, context: Any) -> None:
        self.lock = context.Lock()
        self.admitted = context.Array("i", KEYS, lock=False)
        self.after = context.Array("i", KEYS, lock=False)
        self.revoked_at = context.Array("d", [0.0] * KEYS, lock=False)
        self.stop = context.Event()

    def record(self, index: int, started: float, status: int) -> None:
        with self.lock:
            revoked = self.revoked_at[index]
            if revoked and started > revoked:
                self.after[index] += 1
            elif status == 200:
                self.admitted[index] += 1

    def wait(self, condition: Any) -> None:
        deadline = time.time() + LIMIT
        while not condition():
            if time.time() > deadline:
                raise TimeoutError("the workers made no progress")
            time.sleep(0.01)


def worker(raws: list[str], shared: Shared, out: Any) -> None:
    import django

    django.setup()
    from django.db import connections
    from rest_framework.test import APIClient

    from apiauth.cache import key_cache

    connections.close_all()
    if os.environ.get("RACE_PLANT"):
        plant_bug()
    else:
        lookup = key_cache.lookup

        def slow_lookup(value: str) -> Any:
            pause()  # between the token and the row: where a revocation may land
            return lookup(value)

        key_cache.lookup = slow_lookup
    client = APIClient()
    seen: list[tuple[int, float, int]] = []
    from apiauth import crypto

    digests = [crypto.parse_key(raw, "apk").digest for raw in raws]
    deadline = time.time() + LIMIT
    while not shared.stop.is_set() and time.time() < deadline:
        index = random.randrange(len(raws))
        if random.random() < 0.5:
            key_cache.forget(digests[index])
        path = random.choice(["/v1/ping", "/v1/whoami"])
        started = time.time()
        status = client.get(path, HTTP_X_API_KEY=raws[index]).status_code
        shared.record(index, started, status)
        seen.append((index, started, status))
    out.put(seen)


def main() -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    from apiauth.models import APIKey

    call_command("migrate", verbosity=0, interactive=False)
    pairs = [APIKey.objects.create_key(name=f"race-{i}") for i in range(KEYS)]
    raws = [raw for _key, raw in pairs]
    connections.close_all()

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    shared = Shared(context)
    processes = [context.Process(target=worker, args=(raws, shared, out)) for _ in range(WORKERS)]
    for process in processes:
        process.start()
    revoked_at: dict[int, float] = {}
    for index in random.sample(range(KEYS), KEYS):
        shared.wait(lambda index=index: shared.admitted[index] >= BEFORE)
        APIKey.objects.get(pk=pairs[index][0].pk).revoke(reason="race")
        revoked_at[index] = shared.revoked_at[index] = time.time()
        time.sleep(random.uniform(0, 0.1))
    shared.wait(lambda: all(shared.after[index] >= AFTER for index in range(KEYS)))
    shared.stop.set()
    results = [item for _ in processes for item in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=30)

    resurrected = [
        (index, started - revoked_at[index])
        for index, started, status in results
        if status == 200 and index in revoked_at and started > revoked_at[index]
    ]
    after = [r for r in results if r[0] in revoked_at and r[1] > revoked_at[r[0]]]
    summary = {
        "requests": len(results),
        "after_revocation": len(after),
        "ok_before_revocation": sum(
            1
            for index, started, status in results
            if status == 200 and started <= revoked_at.get(index, float("inf"))
        ),
        "resurrected": len(resurrected),
    }
    print(json.dumps(summary))
    return 1 if resurrected else 0


if __name__ == "__main__":
    sys.exit(main())
