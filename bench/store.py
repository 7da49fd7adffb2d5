"""What each request's script costs redis-server: the DRF floor's and ours, in one sitting.

The end-to-end benchmark counts redis-server's CPU with the app servers', and there ours costs
about twice the floor's. ``python -m bench store`` isolates the scripts: each variant sends
``n`` ``EVALSHA`` calls, pipelined, on keys spread over many lineages (every call admitted,
so every one writes, as in the end-to-end run), the variants taking turns in each round. It
prints, per call, the time Redis spent inside the script (``INFO commandstats``) and
redis-server's CPU (from ``/proc``: reading the command and writing the reply as well, their
system calls shared by the pipeline). A round trip per request costs redis-server more than
either (``python -m bench e2e`` counts it), the same for every variant.
"""

from __future__ import annotations

import os
import random
import statistics
from collections.abc import Callable
from typing import Any

import django

from bench.common import print_table

LINEAGES = 4096
"""Calls spread over this many lineages keep every bucket below its burst for the run."""

TOKEN = "0123456789abcdef"
"""Every lineage's version token, set before the run: each confirmation succeeds."""

ENTERPRISE = {"rate": "6000/min", "burst": 1000, "quotas": ["500000/day"]}
"""The demo's enterprise plan: a bucket and a daily quota."""

Call = tuple[list[str], list[Any]]


def variants() -> dict[str, tuple[str, Callable[[int], Call]]]:
    """Each variant's script and the keys and arguments of its ``i``-th call."""
    from apiauth.conf import conf
    from apiauth.store import keys, lua
    from apiauth.store.redis import _argv
    from apiauth.throttling.limiter import plan_key_names
    from apiauth.throttling.rates import parse_limits
    from bench.sites import floor_urls as floor

    limits = parse_limits(ENTERPRISE)
    names = plan_key_names(limits)
    plan, first = _argv(limits, 1, True), _argv(limits[:1], 1, True)
    check = [TOKEN, 0, 0, 0]

    def tag(i: int) -> str:
        return keys.lineage_identity(f"{i % LINEAGES:032x}")

    def ours(limits: int, checked: bool) -> Callable[[int], Call]:
        argv = plan if limits == 2 else first

        def call(i: int) -> Call:
            limit_keys = keys.keys_for(tag(i), names[:limits])
            if not checked:
                return limit_keys, argv
            return [keys.key_for(tag(i), keys.VERSION), *limit_keys], [*check, *argv]

        return call

    def floor_call(i: int) -> Call:
        return [f"{conf.RATELIMIT_KEY_PREFIX}floor:{i % LINEAGES}"], [
            floor.INTERVAL_US,
            floor.SPAN_US,
        ]

    return {
        "the DRF floor: one bucket": (floor.BUCKET, floor_call),
        "ours: the copy's version and one bucket": (lua.CHECKED_SCRIPT, ours(1, True)),
        "ours: the copy's version, a bucket and a quota (the demo's request)": (
            lua.CHECKED_SCRIPT,
            ours(2, True),
        ),
        "ours: a bucket and a quota, no copy to confirm": (lua.SCRIPT, ours(2, False)),
    }


def run(n: int = 50_000, rounds: int = 9) -> None:
    import redis

    from bench.e2e import _cpu_of, _machine, _redis_pid

    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"  # apiauth's settings; no database
    django.setup()
    url = os.environ["REDIS_URL"]
    client = redis.Redis.from_url(url)
    pid = _redis_pid(url)
    scripts = variants()
    shas = {label: client.script_load(source) for label, (source, _) in scripts.items()}
    for i in range(LINEAGES):
        call = scripts["ours: the copy's version and one bucket"][1](i)
        client.set(call[0][0], TOKEN)
    in_script: dict[str, list[float]] = {label: [] for label in scripts}
    cpu: dict[str, list[float]] = {label: [] for label in scripts}
    offset = 0
    for _ in range(rounds):
        order = list(scripts)
        random.shuffle(order)  # no variant always follows the same one
        for label in order:
            calls = [scripts[label][1](offset + i) for i in range(n)]
            client.config_resetstat()
            before = _cpu_of(pid)
            for start in range(0, n, 500):
                pipe = client.pipeline(transaction=False)
                for call_keys, argv in calls[start : start + 500]:
                    pipe.evalsha(shas[label], len(call_keys), *call_keys, *argv)
                for reply in pipe.execute():  # the floor's 1, or our b"1 …"
                    text = reply.decode() if isinstance(reply, bytes) else str(reply)
                    if not text.startswith("1"):
                        raise SystemExit(f"{label}: a call was refused ({reply!r})")
            cpu[label].append((_cpu_of(pid) - before) / n * 1e6)
            stats = client.info("commandstats")["cmdstat_evalsha"]
            in_script[label].append(float(stats["usec_per_call"]))
        offset += n
    floor = statistics.median(in_script["the DRF floor: one bucket"])
    floor_cpu = statistics.median(cpu["the DRF floor: one bucket"])
    print(f"\nThe store's side, per call ({_machine()}; {rounds} rounds of {n} pipelined calls):")
    rows = []
    for label in scripts:
        script, server = statistics.median(in_script[label]), statistics.median(cpu[label])
        rows.append(
            [
                label,
                f"{script:.2f}",
                f"{script / floor:.2f}",
                f"{server:.1f}" if pid else "-",
                f"{server / floor_cpu:.2f}" if pid and floor_cpu else "-",
            ]
        )
    print_table(
        ["script", "µs in the script", "/ the floor's", "redis-server CPU µs", "/ the floor's"],
        rows,
    )
    if not pid:
        print("(redis-server runs elsewhere: its CPU cannot be read here)")
