"""``python -m bench [NAME ...] [--n N]``: run the in-process benchmarks (``auth``,
``throttle``, ``hmac`` and ``jwt``) by default; ``python -m bench e2e [--rounds R]
[--seconds S] [--same-middleware]`` serves the demo and its rivals under gunicorn and drives
them with wrk, and ``python -m bench noise [--rounds R] [--seconds S]`` serves the demo twice
the same way (an A/A run: the noise in a ratio); ``python -m bench breakdown [--n N]
[--rounds R] [--trip T]`` times each step of the demo's request in process, against the DRF
floor; ``python -m bench instructions [--n N]`` counts the instructions of each step's request
under callgrind; ``python -m bench store [--n N] [--rounds R]`` times the floor's script and
ours inside redis-server."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

from bench import auth, breakdown, e2e, hmac, instructions, jwt, store, throttle
from bench.redis_server import temporary_redis

BENCHMARKS: dict[str, Callable[..., Any]] = {
    "auth": auth.run,
    "throttle": throttle.run,
    "hmac": hmac.run,
    "jwt": jwt.run,
    "e2e": e2e.run,
    "noise": e2e.noise,
    "breakdown": breakdown.run,
    "instructions": instructions.run,
    "store": store.run,
}
DEFAULT = ["auth", "throttle", "hmac", "jwt"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME")
    parser.add_argument("--n", type=int, default=None, help="Requests per round (in-process).")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="Interleaved rounds (e2e: 5, noise: 20, breakdown: 7, auth and hmac: 15).",
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="Seconds per round (e2e, noise)."
    )
    parser.add_argument(
        "--same-middleware",
        action="store_true",
        help="e2e: also run the anchor and the floor with the demo's whole middleware.",
    )
    parser.add_argument(
        "--trip",
        choices=["redis", "replayed", "polled", "polluted"],
        default="redis",
        help="breakdown: round trips on apiauth's connection made for real (the default), "
        "replayed from memory, polled for instead of slept on, or replayed with the caches "
        "disturbed in their place (experiments).",
    )
    args = parser.parse_args()
    if os.environ.get("REDIS_URL"):
        run_all(args)
    else:
        with temporary_redis() as url:
            os.environ["REDIS_URL"] = url
            run_all(args)


def run_all(args: argparse.Namespace) -> None:
    for name in args.names or DEFAULT:
        if name == "e2e":
            e2e.run(
                rounds=args.rounds or 5, seconds=args.seconds, same_middleware=args.same_middleware
            )
        elif name == "noise":
            e2e.noise(rounds=args.rounds or 20, seconds=args.seconds)
        elif name == "instructions":
            instructions.run(n=args.n or 200)
        elif name == "store":
            store.run(n=args.n or 50_000, rounds=args.rounds or 9)
        elif name == "breakdown":
            breakdown.run(n=args.n or 1000, rounds=args.rounds or 7, trip=args.trip)
        elif name in ("hmac", "auth"):
            BENCHMARKS[name](n=args.n or 500, rounds=args.rounds or 15)
        else:
            BENCHMARKS[name](**({"n": args.n} if args.n else {}))


if __name__ == "__main__":
    main()
