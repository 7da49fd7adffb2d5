"""Instructions per request of the demo's ``GET /v1/ping`` and of the floors, under callgrind.

CPU time on a shared machine moves by 20 % between runs; the number of instructions a request
executes does not. ``python -m bench instructions`` serves the breakdown's steps (the same
settings, URLconfs and keys as ``python -m bench breakdown``) in one process under
``valgrind --tool=callgrind``, and counts only the requests: collection is on inside
``functools.reduce``, which drives them and which no request calls. The garbage collector is
off while they run (a collection lands in whichever request allocates past the threshold)
and the worker's copies outlive the run (a refresh lands in one request), so each figure is
the same from run to run to a fraction of a percent.

Instructions are not time: they leave out the kernel (the round trip's system calls, SQLite's
file locks), redis-server and the caches, and a C loop and a Python bytecode differ in cost.
They answer one question exactly: how much work of its own does a change add or remove.
Needs valgrind (``apt-get install valgrind``).
"""

from __future__ import annotations

import functools
import gc
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.breakdown import ROOT, site_env
from bench.common import print_table

KEYS = 16
"""Fewer than the breakdown's: issuing them under callgrind is slow, and a count does not
depend on how many copies a worker holds."""

STEPS = [
    ("no-query floor", "the DRF floor's classes, the key in a dict, EVALSHA on ours"),
    ("DRF floor", "one SQL lookup, one EVALSHA (django-redis)"),
    ("throttled", "our key and TokenBucketThrottle, the bare answer"),
    ("ours", "the demo's /v1/ping"),
]


def run(n: int = 200) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("python -m bench instructions needs valgrind: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="apiauth-instructions-") as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=functools_reduce",
                "--dump-after=functools_reduce",  # one profile per step
                f"--callgrind-out-file={out}",
                sys.executable,
                "-W",
                "ignore",
                "-m",
                "bench.instructions",
                str(n),
            ],
            cwd=ROOT,
            env=site_env(tmp),
            check=True,
            capture_output=True,
        )
        dumps = sorted(Path(tmp).glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
        totals = [re.search(r"^summary: (\d+)$", p.read_text(), re.MULTILINE) for p in dumps]
    if len(totals) != len(STEPS) or not all(totals):
        raise SystemExit("callgrind did not write one profile per step")
    counts = {
        step: int(total.group(1)) / n
        for (step, _what), total in zip(STEPS, totals, strict=True)
        if total is not None
    }
    print(f"\nInstructions per request (callgrind), {n} requests a step, real round trips:")
    print_table(
        ["step", "instructions per request"],
        [[f"{step}: {what}", f"{counts[step]:,.0f}"] for step, what in STEPS],
    )
    print(
        f"\nDRF floor/ours in instructions: {counts['DRF floor'] / counts['ours']:.2f}; ours over "
        f"the no-query floor: {counts['ours'] - counts['no-query floor']:,.0f} (the key and "
        f"the throttle alone: {counts['throttled'] - counts['no-query floor']:,.0f})."
    )


def measure(n: int) -> None:
    """In the process callgrind runs: each step's ``n`` requests inside a ``reduce`` of
    their own (callgrind writes a profile as each ends)."""
    from django.conf import settings
    from django.test import override_settings

    from bench.breakdown import serve, site

    # No copy refreshed, no use recorded while callgrind slows the run fiftyfold.
    with override_settings(
        APIAUTH={**settings.APIAUTH, "CREDENTIAL_CACHE_TTL": 86_400.0, "LAST_USED_INTERVAL": 86_400}
    ):
        keys, handlers = site(KEYS)
        handler = handlers["demo"]
        for step, _what in STEPS:
            serve(handler, step, keys, 2 * len(keys))  # every key's copy, warm

            def one(_: Any, i: int, step: str = step) -> None:
                serve(handler, step, [keys[i % len(keys)]], 1)

            gc.collect()
            gc.disable()
            functools.reduce(one, range(n), None)
            gc.enable()


if __name__ == "__main__":
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.sites.breakdown")
    django.setup()
    measure(int(sys.argv[1]))
